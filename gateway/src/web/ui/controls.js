// The controls: deleting a group or all of them, and every event handler of the page
// (tabs, history, expanding, paging, filter, matcher, page size, refresh, keyboard).

import { deleteGroup as deleteGroupRequest, wipe } from './api.js?v=__VERSION__';
import { $, confirmDialog, notice } from './dom.js?v=__VERSION__';
import { fmtRel, labelHtml, plural } from './format.js?v=__VERSION__';
import { loadMetrics, loadStatus } from './load.js?v=__VERSION__';
import { applyMatcher, deleteMatchingGroups } from './matcher.js?v=__VERSION__';
import { readUrl, showTab, syncUrl, urlFor } from './navigation.js?v=__VERSION__';
import { renderGroups, rerenderGroup, shownGroup } from './render.js?v=__VERSION__';
import { DEFAULT_PAGE_SIZE, pageSlice, state } from './state.js?v=__VERSION__';

// ---------------------------------------------------------------- actions

async function deleteGroup(g) {
  const ok = await confirmDialog('Delete this group?',
    '<p class="dialog-labels">' + g.pairs.map((p) => labelHtml(p[0], p[1])).join('') + '</p>' +
    '<p>This deletes its ' + plural(g.familyCount, 'metric family', 'metric families') + ' (' + plural(g.seriesCount, 'series', 'series') +
    ') from the Pushgateway. It cannot be undone.</p>', 'Delete group');
  if (!ok) return;
  try {
    await deleteGroupRequest(g.pairs);
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
    await wipe();
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

// ---------------------------------------------------------------- events

// Attaches every handler; called once at start.
export function bindControls() {
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
      state.matcher = '';
      state.matcherKeys = null;
      $('matcher').value = '';
      $('delete-matching').hidden = true;
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
    const slice = pageSlice();
    const collapse = slice.length && slice.every((g) => state.expanded.has(g.key));
    for (const g of slice) {
      if (collapse) state.expanded.delete(g.key);
      else state.expanded.add(g.key);
    }
    renderGroups();
  });
  $('wipe').addEventListener('click', wipeAll);

  // The matcher goes to the server on Enter (or when the box is cleared), not per keystroke.
  async function onMatcher() {
    state.matcher = $('matcher').value;
    state.page = 0;
    await applyMatcher();
    renderGroups();
    syncUrl();
  }
  $('matcher').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') onMatcher();
  });
  $('matcher').addEventListener('search', onMatcher); // the clear button of a search field
  $('delete-matching').addEventListener('click', () => deleteMatchingGroups((deleted) => {
    for (const g of state.groups) if (deleted.has(g.key)) state.pendingDelete.set(g.key, [g.pushTime, g.failTime]);
    state.groups = state.groups.filter((g) => !deleted.has(g.key));
    for (const key of deleted) state.expanded.delete(key);
    renderGroups();
    setTimeout(loadMetrics, 400);
  }));

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
}
