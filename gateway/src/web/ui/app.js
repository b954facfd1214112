// Pushgateway web UI. Plain JavaScript, no framework, no build step, no external requests.
// index.html sets a <base> to the directory the browser sees the page in (<prefix>/); every
// request made here is relative to that prefix, so the page works under --web.route-prefix,
// --web.external-url and behind proxies that rewrite the path.
function pgwMain() {
  'use strict';

  const PAGE_SIZES = [50, 100, 250, 500];
  const DEFAULT_PAGE_SIZE = 100;
  const SAMPLE_LIMIT = 250; // samples rendered per family before a "show all" button
  const INTERNAL_FAMILIES = ['push_time_seconds', 'push_failure_time_seconds'];
  const PLACEHOLDER = '__PATH_' + 'PREFIX__'; // split so no server substitution can touch it

  const timings = { start: performance.now() };
  window.pgw = { timings: timings };

  // ---------------------------------------------------------------- helpers

  function meta(name) {
    const el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute('content') || '' : '';
  }

  // The path prefix as the browser sees it. index.html sets a <base> to the page's directory;
  // without it (inline scripts blocked), use the server's external prefix, else the location.
  function pathPrefix() {
    if (document.querySelector('base[data-pgw]')) {
      return new URL(document.baseURI).pathname.replace(/\/+$/, '');
    }
    let p = meta('pgw-path-prefix');
    if (p.indexOf(PLACEHOLDER) !== -1) {
      p = location.pathname.replace(/\/(status|index\.html)?$/, '');
    }
    return p.replace(/\/+$/, '');
  }

  const prefix = pathPrefix();

  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ESC[c]);
  }

  function $(id) {
    return document.getElementById(id);
  }

  function plural(n, one, many) {
    return fmtInt(n) + ' ' + (n === 1 ? one : many || one + 's');
  }

  function fmtInt(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  // URL-safe base64 of the UTF-8 bytes, without padding; "=" alone for the empty string.
  function base64url(s) {
    if (s === '') return '=';
    const bytes = new TextEncoder().encode(s);
    let bin = '';
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function pad(n, w) {
    return String(n).padStart(w || 2, '0');
  }

  // "2026-11-22 01:19:20 UTC": unambiguous, the same for every viewer.
  function fmtAbs(ms) {
    const d = new Date(ms);
    if (isNaN(d.getTime())) return '';
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
      pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + ' UTC';
  }

  function fmtDuration(sec) {
    sec = Math.max(0, Math.floor(sec));
    if (sec < 60) return sec + 's';
    const m = Math.floor(sec / 60);
    if (m < 60) return m + 'm ' + (sec % 60) + 's';
    const h = Math.floor(m / 60);
    if (h < 48) return h + 'h ' + (m % 60) + 'm';
    const d = Math.floor(h / 24);
    return d + 'd ' + (h % 24) + 'h';
  }

  function fmtRel(ms) {
    const diff = (Date.now() - ms) / 1000;
    if (diff < -5) return 'in ' + fmtDuration(-diff);
    if (diff < 5) return 'just now';
    const sec = Math.floor(diff);
    if (sec < 60) return sec + 's ago';
    const m = Math.floor(sec / 60);
    if (m < 60) return m + 'm ago';
    const h = Math.floor(m / 60);
    if (h < 48) return h + 'h ' + (m % 60) + 'm ago';
    return Math.floor(h / 24) + 'd ago';
  }

  function timeHtml(ms) {
    return '<time datetime="' + esc(new Date(ms).toISOString()) + '" data-ts="' + ms + '" title="' +
      esc(fmtAbs(ms)) + '">' + esc(fmtRel(ms)) + '</time>';
  }

  function labelHtml(name, value) {
    const v = JSON.stringify(String(value));
    return '<span class="label" title="' + esc(name + '=' + v) + '"><span class="ln">' + esc(name) +
      '</span>=<span class="lv">' + esc(v) + '</span></span>';
  }

  function firstValue(family) {
    if (!family || !Array.isArray(family.metrics) || !family.metrics.length) return 0;
    const v = parseFloat(family.metrics[0].value);
    return isFinite(v) ? v : 0;
  }

  async function api(method, path) {
    const res = await fetch(prefix + path, {
      method: method,
      headers: { Accept: 'application/json' },
      cache: 'no-store',
    });
    if (!res.ok) {
      let detail = '';
      try {
        detail = (await res.text()).trim();
      } catch (e) {
        /* ignore */
      }
      throw new Error('HTTP ' + res.status + (detail ? ': ' + detail.slice(0, 300) : ''));
    }
    return res;
  }

  // ---------------------------------------------------------------- notices

  let noticeTimer = 0;
  function notice(text, kind) {
    const el = $('notice');
    el.textContent = text;
    el.className = 'notice ' + (kind || 'info');
    el.hidden = false;
    clearTimeout(noticeTimer);
    if (kind !== 'error') noticeTimer = setTimeout(() => { el.hidden = true; }, 6000);
  }

  $('notice').addEventListener('click', () => { $('notice').hidden = true; });

  // ---------------------------------------------------------------- confirm dialog

  function confirmDialog(title, bodyHtml, okText) {
    const dlg = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-body').innerHTML = bodyHtml;
    $('confirm-ok').textContent = okText || 'Delete';
    dlg.returnValue = '';
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      if (typeof dlg.showModal === 'function') {
        dlg.showModal();
        $('confirm-cancel').focus();
      } else {
        // Very old browsers: fall back to the native prompt.
        resolve(window.confirm(title));
      }
    });
  }

  // ---------------------------------------------------------------- state

  const state = {
    tab: 'metrics',
    groups: [], // prepared groups, sorted
    filtered: [],
    query: '',
    onlyFailed: false,
    page: 0,
    pageSize: DEFAULT_PAGE_SIZE,
    expanded: new Set(), // group keys
    showAll: new Set(), // "groupKey\nfamily" whose samples are all shown
    pendingDelete: new Map(), // group key -> [pushTime, failTime] at deletion
    loaded: false,
    loading: false,
    status: null,
    admin: false,
    generation: 0,
  };

  // One group of the API response. Only what sorting needs is computed up front; the rest
  // (labels as pairs, key, counts, times, filter text) on first use, i.e. for the groups
  // actually shown or filtered, which keeps loading 10,000 groups fast.
  class Group {
    constructor(raw) {
      this.raw = raw;
      const labels = raw.labels || {};
      const names = Object.keys(labels);
      if (names.length > 1) {
        names.sort();
        const j = names.indexOf('job');
        if (j > 0) {
          names.splice(j, 1);
          names.unshift('job');
        }
      }
      this.names = names;
      let sortKey = '';
      for (const n of names) sortKey += n + '\u0001' + naturalKey(String(labels[n])) + '\u0002';
      this.sortKey = sortKey;
      this.failed = raw.last_push_successful === false;
      this._pairs = null;
      this._key = null;
      this._search = null;
      this._stats = null;
    }

    get pairs() {
      if (!this._pairs) {
        const labels = this.raw.labels || {};
        this._pairs = this.names.map((n) => [n, String(labels[n])]);
      }
      return this._pairs;
    }

    get key() {
      if (this._key === null) this._key = JSON.stringify(this.pairs);
      return this._key;
    }

    get search() {
      if (this._search === null) {
        let text = '';
        for (const p of this.pairs) text += p[0] + '=' + p[1] + '\n';
        this._search = text.toLowerCase();
      }
      return this._search;
    }

    stats() {
      if (!this._stats) {
        const raw = this.raw;
        let families = 0;
        let series = 0;
        for (const k in raw) {
          if (k === 'labels' || k === 'last_push_successful') continue;
          const f = raw[k];
          if (!f || typeof f !== 'object' || !Array.isArray(f.metrics)) continue;
          if (INTERNAL_FAMILIES.indexOf(k) !== -1) continue;
          families++;
          series += f.metrics.length;
        }
        this._stats = {
          families: families,
          series: series,
          pushTime: firstValue(raw.push_time_seconds) * 1000,
          failTime: firstValue(raw.push_failure_time_seconds) * 1000,
        };
      }
      return this._stats;
    }

    get familyCount() { return this.stats().families; }
    get seriesCount() { return this.stats().series; }
    get pushTime() { return this.stats().pushTime; }
    get failTime() { return this.stats().failTime; }
  }

  // Natural, case-insensitive order ("host-2" before "host-10") by plain string comparison of
  // precomputed keys: digit runs zero-padded, which is much faster than a collator on 10k groups.
  function naturalKey(v) {
    v = v.toLowerCase();
    if (!/\d/.test(v)) return v;
    return v.replace(/\d+/g, (d) => (d.length < 16 ? '0000000000000000'.slice(d.length) + d : d));
  }

  function compareGroups(a, b) {
    if (a.sortKey !== b.sortKey) return a.sortKey < b.sortKey ? -1 : 1;
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  }

  // Filter terms: whitespace separated, all must match (case-insensitive substring of
  // name=value). Quotes around values are optional: job="a b" and job=a are both fine.
  function parseQuery(q) {
    const terms = [];
    const re = /[^\s"]*"[^"]*"?[^\s]*|\S+/g;
    let m;
    while ((m = re.exec(q))) terms.push(m[0].replace(/"/g, '').toLowerCase());
    return terms.filter((t) => t.length);
  }

  function applyFilter() {
    const terms = parseQuery(state.query);
    const only = state.onlyFailed;
    if (!terms.length && !only) {
      state.filtered = state.groups;
      return;
    }
    state.filtered = state.groups.filter((g) => {
      if (only && !g.failed) return false;
      for (const t of terms) if (g.search.indexOf(t) === -1) return false;
      return true;
    });
  }

  // ---------------------------------------------------------------- loading

  async function loadMetrics() {
    state.loading = true;
    $('groups').setAttribute('aria-busy', 'true');
    try {
      const t0 = performance.now();
      const res = await api('GET', '/api/v1/metrics');
      const body = await res.json();
      timings.fetched = performance.now();
      timings.fetchMs = timings.fetched - t0;
      if (!body || body.status !== 'success' || !Array.isArray(body.data)) {
        throw new Error('unexpected response from api/v1/metrics');
      }
      let groups = new Array(body.data.length);
      for (let i = 0; i < groups.length; i++) groups[i] = new Group(body.data[i]);
      if (state.pendingDelete.size) {
        // A deleted group may still be listed for a moment (upstream applies deletes
        // asynchronously); hide it unless it was pushed again since.
        const seen = new Set();
        const kept = groups.filter((g) => {
          seen.add(g.key);
          const pending = state.pendingDelete.get(g.key);
          return !(pending && pending[0] === g.pushTime && pending[1] === g.failTime);
        });
        for (const k of Array.from(state.pendingDelete.keys())) if (!seen.has(k)) state.pendingDelete.delete(k);
        groups = kept;
      }
      groups.sort(compareGroups);
      state.groups = groups;
      state.loaded = true;
      timings.prepared = performance.now();
      renderGroups();
      if (state.status && state.tab === 'status') renderStatus();
      if (!timings.firstRender) {
        timings.firstRender = performance.now();
        try {
          performance.mark('pgw-first-render');
        } catch (e) {
          /* ignore */
        }
      }
    } catch (err) {
      notice('Could not load the groups: ' + err.message, 'error');
      if (!state.loaded) $('group-count').textContent = 'Could not load the groups.';
    } finally {
      state.loading = false;
      $('groups').setAttribute('aria-busy', 'false');
    }
  }

  async function loadStatus() {
    try {
      const res = await api('GET', '/api/v1/status');
      const body = await res.json();
      if (!body || body.status !== 'success' || !body.data) throw new Error('unexpected response from api/v1/status');
      state.status = body.data;
      const flags = body.data.flags || {};
      state.admin = String(flags['web.enable-admin-api']) === 'true';
      $('wipe').hidden = !state.admin;
      renderStatus();
    } catch (err) {
      notice('Could not load the status: ' + err.message, 'error');
    }
  }

  // ---------------------------------------------------------------- rendering: groups

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
        const dist = type === 'summary' ? mapHtml(m.quantiles, 'φ=') : mapHtml(m.buckets, 'le=');
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

  function renderGroups() {
    applyFilter();
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
  function shownGroup(key) {
    const start = state.page * state.pageSize;
    const slice = state.filtered.slice(start, start + state.pageSize);
    return slice.find((g) => g.key === key) || null;
  }

  function rerenderGroup(article, g) {
    const tmp = document.createElement('div');
    tmp.innerHTML = groupHtml(g);
    article.replaceWith(tmp.firstChild);
  }

  // ---------------------------------------------------------------- rendering: status

  const BUILD_NAMES = {
    version: 'Version', revision: 'Revision', branch: 'Branch', buildUser: 'Build user',
    buildDate: 'Build date', goVersion: 'Go version', rustVersion: 'Rust version',
  };

  function kvRows(rows) {
    return rows.map((r) => '<tr><th scope="row">' + esc(r[0]) + '</th><td>' + r[1] + '</td></tr>').join('');
  }

  function valueText(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function renderStatus() {
    const d = state.status;
    if (!d) return;
    const flags = d.flags || {};
    const rows = [];
    const start = Date.parse(d.start_time);
    if (!isNaN(start)) {
      rows.push(['Start time', esc(fmtAbs(start)) + ' <span class="muted">(up ' + esc(fmtDuration((Date.now() - start) / 1000)) + ')</span>']);
    } else if (d.start_time) {
      rows.push(['Start time', esc(d.start_time)]);
    }
    if (d.storage !== undefined) rows.push(['Storage', '<span class="pill">' + esc(valueText(d.storage)) + '</span>']);
    const pers = d.persistence;
    if (pers && typeof pers === 'object') {
      const file = pers.file !== undefined ? pers.file : flags['persistence.file'];
      rows.push(['Persistence file', file ? '<code>' + esc(file) + '</code>' : '<span class="muted">none (persistence disabled)</span>']);
      if (pers.state !== undefined) rows.push(['Persistence state', '<span class="pill">' + esc(valueText(pers.state)) + '</span>']);
      for (const k of Object.keys(pers).sort()) {
        if (k === 'file' || k === 'state') continue;
        rows.push(['Persistence ' + k.replace(/_/g, ' '), esc(valueText(pers[k]))]);
      }
    } else if (pers !== undefined) {
      rows.push(['Persistence', esc(valueText(pers))]);
    } else if ('persistence.file' in flags) {
      const f = flags['persistence.file'];
      rows.push(['Persistence', f ? '<code>' + esc(f) + '</code> every ' + esc(flags['persistence.interval'] || '?')
        : '<span class="muted">disabled</span>']);
    }
    if ('web.enable-admin-api' in flags) rows.push(['Admin API', state.admin ? 'enabled' : '<span class="muted">disabled</span>']);
    if (state.loaded) rows.push(['Groups', fmtInt(state.groups.length)]);
    for (const k of Object.keys(d).sort()) {
      if (['flags', 'start_time', 'build_information', 'storage', 'persistence'].indexOf(k) !== -1) continue;
      rows.push([k.replace(/_/g, ' '), esc(valueText(d[k]))]);
    }
    $('runtime').tBodies[0].innerHTML = kvRows(rows);

    const build = d.build_information || {};
    // Fields a build leaves empty (ours has no Go version, a local build no revision) are left out.
    const filled = (k) => valueText(build[k]) !== '';
    const known = Object.keys(BUILD_NAMES).filter((k) => k in build && filled(k));
    const others = Object.keys(build).filter((k) => !(k in BUILD_NAMES) && filled(k)).sort();
    $('build').tBodies[0].innerHTML = kvRows(known.concat(others).map((k) => [BUILD_NAMES[k] || k, esc(valueText(build[k]))])) ||
      '<tr><td class="muted">No build information.</td></tr>';

    $('flags').tBodies[0].innerHTML = kvRows(Object.keys(flags).sort().map((k) => {
      const v = valueText(flags[k]);
      return ['--' + k, v === '' ? '<span class="muted">(empty)</span>' : '<code>' + esc(v) + '</code>'];
    }));
    $('view-status').setAttribute('data-loaded', 'true');
  }

  // ---------------------------------------------------------------- actions

  async function deleteGroup(g) {
    const ok = await confirmDialog('Delete this group?',
      '<p class="dialog-labels">' + g.pairs.map((p) => labelHtml(p[0], p[1])).join('') + '</p>' +
      '<p>This deletes its ' + plural(g.familyCount, 'metric family', 'metric families') + ' (' + plural(g.seriesCount, 'series', 'series') +
      ') from the Pushgateway. It cannot be undone.</p>', 'Delete group');
    if (!ok) return;
    let path = '/metrics';
    const job = g.pairs.find((p) => p[0] === 'job');
    path += '/job@base64/' + base64url(job ? job[1] : '');
    for (const p of g.pairs) {
      if (p[0] === 'job') continue;
      path += '/' + encodeURIComponent(p[0]) + '@base64/' + base64url(p[1]);
    }
    try {
      await api('DELETE', path);
    } catch (err) {
      notice('Could not delete the group: ' + err.message, 'error');
      return;
    }
    state.pendingDelete.set(g.key, [g.pushTime, g.failTime]);
    state.groups = state.groups.filter((x) => x.key !== g.key);
    state.expanded.delete(g.key);
    renderGroups();
    notice('Deleted the group ' + g.pairs.map((p) => p[0] + '=' + JSON.stringify(p[1])).join(', ') + '.');
    setTimeout(loadMetrics, 400);
  }

  async function wipeAll() {
    const n = state.groups.length;
    const ok = await confirmDialog('Delete all groups?',
      '<p>This deletes <strong>every</strong> group (' + plural(n, 'group') + ') from the Pushgateway, using the admin API. It cannot be undone.</p>',
      'Delete all groups');
    if (!ok) return;
    try {
      await api('PUT', '/api/v1/admin/wipe');
    } catch (err) {
      notice('Could not delete all groups: ' + err.message, 'error');
      return;
    }
    for (const g of state.groups) state.pendingDelete.set(g.key, [g.pushTime, g.failTime]);
    state.groups = [];
    state.expanded.clear();
    renderGroups();
    notice('Deleted all groups.');
    setTimeout(loadMetrics, 400);
  }

  // ---------------------------------------------------------------- URL state and tabs

  function readUrl() {
    const path = location.pathname.replace(/\/+$/, '');
    state.tab = /\/status$/.test(path) ? 'status' : 'metrics';
    const params = new URLSearchParams(location.search);
    state.query = params.get('q') || '';
    state.onlyFailed = params.get('failed') === '1';
    const size = parseInt(params.get('size') || '', 10);
    state.pageSize = PAGE_SIZES.indexOf(size) !== -1 ? size : DEFAULT_PAGE_SIZE;
    state.page = Math.max(0, (parseInt(params.get('page') || '1', 10) || 1) - 1);
    $('filter').value = state.query;
    $('only-failed').checked = state.onlyFailed;
    $('page-size').value = String(state.pageSize);
  }

  function urlFor(tab) {
    if (tab === 'status') return prefix + '/status';
    const params = new URLSearchParams();
    if (state.query) params.set('q', state.query);
    if (state.onlyFailed) params.set('failed', '1');
    if (state.page > 0) params.set('page', String(state.page + 1));
    if (state.pageSize !== DEFAULT_PAGE_SIZE) params.set('size', String(state.pageSize));
    const qs = params.toString();
    return prefix + '/' + (qs ? '?' + qs : '');
  }

  function syncUrl() {
    if (state.tab !== 'metrics') return;
    const url = urlFor('metrics');
    if (url !== location.pathname + location.search) history.replaceState(null, '', url);
  }

  function showTab(tab) {
    state.tab = tab;
    $('view-metrics').hidden = tab !== 'metrics';
    $('view-status').hidden = tab !== 'status';
    for (const id of ['tab-metrics', 'tab-status']) {
      const on = id === 'tab-' + tab;
      $(id).classList.toggle('active', on);
      if (on) $(id).setAttribute('aria-current', 'page');
      else $(id).removeAttribute('aria-current');
    }
    document.title = tab === 'status' ? 'Status · Pushgateway' : 'Pushgateway';
    if (tab === 'status') {
      loadStatus();
    }
  }

  // ---------------------------------------------------------------- events

  document.addEventListener('click', (ev) => {
    const link = ev.target.closest('a[data-tab-link]');
    if (link && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey && ev.button === 0) {
      ev.preventDefault();
      const tab = link.getAttribute('data-tab-link');
      const url = urlFor(tab);
      if (url !== location.pathname + location.search) history.pushState(null, '', url);
      showTab(tab);
      if (tab === 'metrics') loadMetrics();
    }
  });

  window.addEventListener('popstate', () => {
    readUrl();
    showTab(state.tab);
    if (state.tab === 'metrics') renderGroups();
  });

  $('groups').addEventListener('click', (ev) => {
    const t = ev.target;
    if (t.id === 'clear-filter') {
      state.query = '';
      state.onlyFailed = false;
      $('filter').value = '';
      $('only-failed').checked = false;
      state.page = 0;
      renderGroups();
      syncUrl();
      return;
    }
    const article = t.closest('article.group');
    if (!article) return;
    const g = shownGroup(article.getAttribute('data-key'));
    if (!g) return;
    if (t.closest('button.delete')) {
      deleteGroup(g);
    } else if (t.closest('button.expander')) {
      if (state.expanded.has(g.key)) state.expanded.delete(g.key);
      else state.expanded.add(g.key);
      rerenderGroup(article, g);
    } else if (t.closest('button.show-all')) {
      state.showAll.add(g.key + '\n' + t.closest('button.show-all').getAttribute('data-family'));
      rerenderGroup(article, g);
    }
  });

  function onPager(ev) {
    const b = ev.target.closest('button[data-page]');
    if (!b || b.disabled) return;
    state.page = parseInt(b.getAttribute('data-page'), 10);
    renderGroups();
    syncUrl();
    if (ev.currentTarget.id === 'pager-bottom') $('view-metrics').scrollIntoView({ block: 'start' });
  }
  $('pager-top').addEventListener('click', onPager);
  $('pager-bottom').addEventListener('click', onPager);

  let filterTimer = 0;
  $('filter').addEventListener('input', () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      state.query = $('filter').value;
      state.page = 0;
      renderGroups();
      syncUrl();
    }, state.groups.length > 2000 ? 150 : 60);
  });
  $('filter').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && $('filter').value) {
      $('filter').value = '';
      $('filter').dispatchEvent(new Event('input'));
    }
  });
  $('group-count').addEventListener('click', (ev) => {
    if (!ev.target.closest('#show-failed')) return;
    $('only-failed').checked = !state.onlyFailed;
    $('only-failed').dispatchEvent(new Event('change'));
  });
  $('only-failed').addEventListener('change', () => {
    state.onlyFailed = $('only-failed').checked;
    state.page = 0;
    renderGroups();
    syncUrl();
  });
  $('page-size').addEventListener('change', () => {
    const first = state.page * state.pageSize;
    state.pageSize = parseInt($('page-size').value, 10) || DEFAULT_PAGE_SIZE;
    state.page = Math.floor(first / state.pageSize); // keep the first shown group on screen
    renderGroups();
    syncUrl();
  });
  $('refresh').addEventListener('click', () => {
    loadMetrics();
    if (state.status) loadStatus();
  });
  $('toggle-all').addEventListener('click', () => {
    const start = state.page * state.pageSize;
    const slice = state.filtered.slice(start, start + state.pageSize);
    const collapse = slice.length && slice.every((g) => state.expanded.has(g.key));
    for (const g of slice) {
      if (collapse) state.expanded.delete(g.key);
      else state.expanded.add(g.key);
    }
    renderGroups();
  });
  $('wipe').addEventListener('click', wipeAll);

  document.addEventListener('keydown', (ev) => {
    const tag = (ev.target && ev.target.tagName) || '';
    if (ev.key === '/' && state.tab === 'metrics' && !/^(INPUT|TEXTAREA|SELECT)$/.test(tag) && !$('confirm').open) {
      ev.preventDefault();
      $('filter').focus();
    }
  });

  // Keep the relative times ("5m ago") current.
  setInterval(() => {
    const els = document.querySelectorAll('time[data-ts]');
    for (const el of els) el.textContent = fmtRel(Number(el.getAttribute('data-ts')));
  }, 15000);

  // Synchronous filter (for the render benchmark and the console): returns the match count.
  window.pgw.applyNow = function (q) {
    state.query = String(q);
    state.page = 0;
    renderGroups();
    syncUrl();
    return state.filtered.length;
  };

  // ---------------------------------------------------------------- start

  readUrl();
  showTab(state.tab);
  loadMetrics();
  if (state.tab !== 'status') loadStatus(); // for the admin button (showTab loads it on the status tab)
}

// index.html loads this script deferred; wait for the document anyway if it was not.
if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', pgwMain);
else pgwMain();
