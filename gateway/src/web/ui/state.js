// The page's state, shared by the other modules: what is loaded, what the controls select,
// and the timings the render benchmark reads from window.pgw.

export const PAGE_SIZES = [50, 100, 250, 500];
export const DEFAULT_PAGE_SIZE = 100;
export const SAMPLE_LIMIT = 250; // samples rendered per family before a "show all" button
export const INTERNAL_FAMILIES = ['push_time_seconds', 'push_failure_time_seconds'];

export const timings = { start: performance.now() };
window.pgw = { timings: timings };

export const state = {
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

// The groups of the current page.
export function pageSlice() {
  const start = state.page * state.pageSize;
  return state.filtered.slice(start, start + state.pageSize);
}
