// The URL and the tabs: the filter, matcher, page and page size live in the query string, the tab in
// the path (<prefix>/ or <prefix>/status), so that every view can be linked and reloaded.

import { prefix } from './api.js?v=__VERSION__';
import { $ } from './dom.js?v=__VERSION__';
import { loadStatus } from './load.js?v=__VERSION__';
import { DEFAULT_PAGE_SIZE, PAGE_SIZES, state } from './state.js?v=__VERSION__';

export function readUrl() {
  const path = location.pathname.replace(/\/+$/, '');
  state.tab = /\/status$/.test(path) ? 'status' : 'metrics';
  const params = new URLSearchParams(location.search);
  state.query = params.get('q') || '';
  state.matcher = params.get('match') || '';
  state.onlyFailed = params.get('failed') === '1';
  const size = parseInt(params.get('size') || '', 10);
  state.pageSize = PAGE_SIZES.indexOf(size) !== -1 ? size : DEFAULT_PAGE_SIZE;
  state.page = Math.max(0, (parseInt(params.get('page') || '1', 10) || 1) - 1);
  $('filter').value = state.query;
  $('matcher').value = state.matcher;
  $('only-failed').checked = state.onlyFailed;
  $('page-size').value = String(state.pageSize);
}

export function urlFor(tab) {
  if (tab === 'status') return prefix + '/status';
  const params = new URLSearchParams();
  if (state.query) params.set('q', state.query);
  if (state.matcher) params.set('match', state.matcher);
  if (state.onlyFailed) params.set('failed', '1');
  if (state.page > 0) params.set('page', String(state.page + 1));
  if (state.pageSize !== DEFAULT_PAGE_SIZE) params.set('size', String(state.pageSize));
  const qs = params.toString();
  return prefix + '/' + (qs ? '?' + qs : '');
}

export function syncUrl() {
  if (state.tab !== 'metrics') return;
  const url = urlFor('metrics');
  if (url !== location.pathname + location.search) history.replaceState(null, '', url);
}

export function showTab(tab) {
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
