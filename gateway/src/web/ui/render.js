// Rendering the metrics tab: the list of groups, a group's families and samples, the pager
// and the count line. Reads the state, never changes what is loaded.

import { prefix } from './api.js?v=__VERSION__';
import { $ } from './dom.js?v=__VERSION__';
import { esc, fmtAbs, fmtInt, labelHtml, plural, timeHtml } from './format.js?v=__VERSION__';
import { filterGroups } from './groups.js?v=__VERSION__';
import { INTERNAL_FAMILIES, SAMPLE_LIMIT, pageSlice, state } from './state.js?v=__VERSION__';

function groupHtml(g) {
  const open = state.expanded.has(g.key);
  let cls = 'group';
  if (g.failed) cls += ' failed';
  if (open) cls += ' open';
  let labels = '';
  for (const p of g.pairs) labels += labelHtml(p[0], p[1]);
  let meta = '<span class="stat">' + plural(g.familyCount, 'family', 'families') + ' · ' +
    plural(g.seriesCount, 'series', 'series') + '</span>';
  meta += '<span class="when ok">Last push: ' + (g.pushTime > 0 ? timeHtml(g.pushTime) : '<span class="muted">never</span>') + '</span>';
  if (g.failTime > 0) meta += '<span class="when fail">Last failure: ' + timeHtml(g.failTime) + '</span>';
  if (g.failed) meta += '<span class="badge badge-fail">last push failed</span>';
  return '<article class="' + cls + '" data-key="' + esc(g.key) + '">' +
    '<div class="group-head">' +
    '<button type="button" class="expander" aria-expanded="' + open + '" title="Show the metrics of this group">' +
    '<span class="caret" aria-hidden="true"></span><span class="labels">' + labels + '</span></button>' +
    '<div class="meta">' + meta + '</div>' +
    '<button type="button" class="btn btn-small btn-danger delete" title="Delete this group">Delete</button>' +
    '</div>' + (open ? '<div class="group-body">' + groupBodyHtml(g) + '</div>' : '') + '</article>';
}

function bucketSort(a, b) {
  const x = parseFloat(a);
  const y = parseFloat(b);
  if (x === y) return 0;
  return x < y ? -1 : 1;
}

function extraLabels(m, g) {
  const ls = m.labels || {};
  const grouping = new Map(g.pairs);
  const names = Object.keys(ls).filter((n) => !(grouping.has(n) && grouping.get(n) === String(ls[n]))).sort();
  if (!names.length) return '<span class="muted">{}</span>';
  return names.map((n) => labelHtml(n, ls[n])).join('');
}

function mapHtml(obj, keyPrefix) {
  const keys = Object.keys(obj || {}).sort(bucketSort);
  return '<span class="buckets">' + keys.map((k) =>
    '<span class="bucket"><span class="muted">' + esc(keyPrefix + k) + '</span> ' + esc(obj[k]) + '</span>').join('') + '</span>';
}

// Which ends of a native bucket's interval belong to it, by upstream's API number.
const INTERVAL_ENDS = { 0: ['(', ']'], 1: ['[', ')'], 2: ['(', ')'], 3: ['[', ']'] };

// A native histogram's buckets, [boundaries, lower, upper, count] each, as upstream 1.9's
// page shows them: the interval and the observations in it (not cumulative).
function nativeBucketsHtml(buckets) {
  return '<span class="buckets native">' + buckets.map((b) => {
    const ends = INTERVAL_ENDS[b[0]] || INTERVAL_ENDS[2];
    const interval = ends[0] + b[1] + ', ' + b[2] + ends[1];
    return '<span class="bucket native-bucket"><span class="muted">' + esc(interval) + '</span> ' + esc(b[3]) + '</span>';
  }).join('') + '</span>';
}

function bucketsHtml(buckets) {
  return Array.isArray(buckets) ? nativeBucketsHtml(buckets) : mapHtml(buckets, 'le=');
}

function familyHtml(g, name, f, internal) {
  const type = String(f.type || 'UNTYPED').toLowerCase();
  const metrics = f.metrics || [];
  const all = state.showAll.has(g.key + '\n' + name);
  const shown = all ? metrics : metrics.slice(0, SAMPLE_LIMIT);
  const complex = type === 'histogram' || type === 'summary' || type === 'gauge_histogram';
  let rows = '';
  for (const m of shown) {
    let value;
    if (complex) {
      const dist = type === 'summary' ? mapHtml(m.quantiles, 'φ=') : bucketsHtml(m.buckets);
      value = '<td class="num">' + esc(m.count) + '</td><td class="num">' + esc(m.sum) + '</td><td>' + dist + '</td>';
    } else {
      let extra = '';
      if (internal) {
        const v = parseFloat(m.value);
        extra = v > 0 ? ' <span class="muted">(' + esc(fmtAbs(v * 1000)) + ')</span>' : ' <span class="muted">(never)</span>';
      }
      value = '<td class="num">' + esc(m.value) + extra + '</td>';
    }
    rows += '<tr><td><div class="lbls">' + extraLabels(m, g) + '</div></td>' + value + '</tr>';
  }
  const head = complex
    ? '<tr><th>Labels</th><th class="num">Count</th><th class="num">Sum</th><th>' + (type === 'summary' ? 'Quantiles' : 'Buckets') + '</th></tr>'
    : '<tr><th>Labels</th><th class="num">Value</th></tr>';
  let more = '';
  if (metrics.length > shown.length) {
    more = '<button type="button" class="btn btn-small show-all" data-family="' + esc(name) + '">Show all ' +
      fmtInt(metrics.length) + ' series</button>';
  }
  const when = Date.parse(f.time_stamp);
  return '<section class="family' + (internal ? ' internal' : '') + '" data-family="' + esc(name) + '">' +
    '<div class="family-head"><code class="fname">' + esc(name) + '</code>' +
    '<span class="type type-' + esc(type) + '">' + esc(type) + '</span>' +
    '<span class="muted">' + plural(metrics.length, 'series', 'series') + '</span>' +
    (isNaN(when) ? '' : '<span class="muted">pushed ' + timeHtml(when) + '</span>') +
    (f.help ? '<span class="help">' + esc(f.help) + '</span>' : '') + '</div>' +
    '<div class="table-wrap"><table class="samples"><thead>' + head + '</thead><tbody>' + rows + '</tbody></table></div>' +
    more + '</section>';
}

function groupBodyHtml(g) {
  const raw = g.raw;
  const names = Object.keys(raw).filter((k) => k !== 'labels' && k !== 'last_push_successful' &&
    INTERNAL_FAMILIES.indexOf(k) === -1 && raw[k] && Array.isArray(raw[k].metrics)).sort();
  let html = '<div class="times">Last push: <strong>' + (g.pushTime > 0 ? esc(fmtAbs(g.pushTime)) : 'never') +
    '</strong> · Last failure: <strong' + (g.failed ? ' class="fail"' : '') + '>' + (g.failTime > 0 ? esc(fmtAbs(g.failTime)) : 'never') + '</strong>' +
    (g.failed ? ' · <span class="fail">the last push to this group failed</span>' : '') + '</div>';
  if (!names.length) html += '<p class="muted">No metrics besides the ones the Pushgateway adds.</p>';
  for (const n of names) html += familyHtml(g, n, raw[n], false);
  const internal = INTERNAL_FAMILIES.filter((n) => raw[n] && Array.isArray(raw[n].metrics));
  if (internal.length) {
    html += '<details class="internal-wrap"><summary>Added by the Pushgateway</summary>';
    for (const n of internal) html += familyHtml(g, n, raw[n], true);
    html += '</details>';
  }
  return html;
}

function pagerHtml(pages) {
  if (pages <= 1) return '';
  const p = state.page;
  const btn = (target, text, label, disabled, current) =>
    '<button type="button" class="btn btn-small' + (current ? ' current' : '') + '" data-page="' + target + '"' +
    (disabled ? ' disabled' : '') + (current ? ' aria-current="page"' : '') + ' aria-label="' + esc(label) + '">' + text + '</button>';
  let html = btn(p - 1, '‹', 'Previous page', p === 0, false);
  const nums = new Set([0, pages - 1, p - 1, p, p + 1]);
  if (p < 3) nums.add(1).add(2);
  if (p > pages - 4) nums.add(pages - 2).add(pages - 3);
  let last = -1;
  for (const n of Array.from(nums).filter((n) => n >= 0 && n < pages).sort((a, b) => a - b)) {
    if (n > last + 1) html += '<span class="gap">…</span>';
    html += btn(n, String(n + 1), 'Page ' + (n + 1), false, n === p);
    last = n;
  }
  html += btn(p + 1, '›', 'Next page', p >= pages - 1, false);
  return html;
}

// Renders the current page of groups after applying the filter.
export function renderGroups() {
  state.filtered = filterGroups(state.groups, state.query, state.onlyFailed, state.matcherKeys);
  const list = state.filtered;
  const size = state.pageSize;
  const pages = Math.max(1, Math.ceil(list.length / size));
  if (state.page >= pages) state.page = pages - 1;
  if (state.page < 0) state.page = 0;
  const start = state.page * size;
  const slice = list.slice(start, start + size);
  let html = '';
  for (const g of slice) html += groupHtml(g);
  if (!slice.length) {
    if (state.groups.length) {
      html = '<div class="empty">No group matches the filter. <button type="button" class="btn btn-small" id="clear-filter">Clear the filter</button></div>';
    } else {
      const base = location.origin + prefix;
      html = '<div class="empty"><p>No metrics have been pushed yet.</p><p class="muted">Push some with:</p>' +
        '<pre>echo "some_metric 3.14" | curl --data-binary @- ' + esc(base) + '/metrics/job/some_job</pre></div>';
    }
  }
  $('groups').innerHTML = html;
  let count;
  const total = state.groups.length;
  if (!list.length) count = total ? '0 of ' + plural(total, 'group') : 'No groups';
  else if (list.length === total && pages === 1) count = plural(total, 'group');
  else {
    count = (pages > 1 ? fmtInt(start + 1) + '–' + fmtInt(start + slice.length) + ' of ' : '') + plural(list.length, 'group');
    if (list.length !== total) count += ' (filtered from ' + fmtInt(total) + ')';
  }
  const failedCount = countFailed();
  if (failedCount) {
    count += ' · <button type="button" class="linklike fail" id="show-failed" title="' +
      (state.onlyFailed ? 'Show all groups' : 'Show only the groups whose last push failed') + '">' +
      plural(failedCount, 'failed push', 'failed pushes') + '</button>';
  }
  $('group-count').innerHTML = count;
  const pager = pagerHtml(pages);
  $('pager-top').innerHTML = pager;
  $('pager-bottom').innerHTML = pager;
  $('toggle-all').textContent = slice.length && slice.every((g) => state.expanded.has(g.key)) ? 'Collapse page' : 'Expand page';
  state.generation++;
  $('groups').setAttribute('data-generation', String(state.generation));
}

let failedCache = { groups: null, n: 0 };
function countFailed() {
  if (failedCache.groups !== state.groups) {
    let n = 0;
    for (const g of state.groups) if (g.failed) n++;
    failedCache = { groups: state.groups, n: n };
  }
  return failedCache.n;
}

// The group of the current page with the given key.
export function shownGroup(key) {
  return pageSlice().find((g) => g.key === key) || null;
}

export function rerenderGroup(article, g) {
  const tmp = document.createElement('div');
  tmp.innerHTML = groupHtml(g);
  article.replaceWith(tmp.firstChild);
}
