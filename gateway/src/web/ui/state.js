// The page's state, shared by the other modules: what is loaded, what the controls select,
// and the timings the render benchmark reads from window.pgw.

export const PAGE_SIZES = [50, 100, 250, 500];
export const DEFAULT_PAGE_SIZE = 100;
export const SAMPLE_LIMIT = 250; // samples rendered per family before a "show all" button
export const INTERNAL_FAMILIES = ['push_time_seconds', 'push_failure_time_seconds'];

// Where the expanded groups are kept across reloads of the page (per browser tab).
export const EXPANDED_STORAGE_KEY = 'pushgateway.expandedGroups';

export const timings = { start: performance.now() };
window.pgw = { timings: timings };

export const state = {
  tab: 'metrics',
  groups: [], // prepared groups, sorted
  filtered: [],
  query: '',
  matcher: '', // a PromQL selector the server evaluates (matcher.js)
  matcherKeys: null, // keys of the groups it selects; null: no matcher
  onlyFailed: false,
  page: 0,
  pageSize: DEFAULT_PAGE_SIZE,
  expanded: null, // group keys, a SessionSet (below)
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

// A Set that is saved to sessionStorage on every change and read back when the page loads,
// so that the groups a user expanded stay expanded across a reload, as upstream 1.7 keeps
// them. Storage may be unavailable or full: then it is only a Set.
class SessionSet extends Set {
  constructor(storageKey) {
    super();
    this.storageKey = storageKey;
    try {
      const stored = JSON.parse(sessionStorage.getItem(storageKey) || '[]');
      if (Array.isArray(stored)) {
        for (const item of stored) if (typeof item === 'string') super.add(item);
      }
    } catch (err) {
      // Unreadable or unavailable: start with nothing expanded.
    }
  }

  add(item) {
    super.add(item);
    this.save();
    return this;
  }

  delete(item) {
    const had = super.delete(item);
    if (had) this.save();
    return had;
  }

  clear() {
    super.clear();
    this.save();
  }

  save() {
    try {
      sessionStorage.setItem(this.storageKey, JSON.stringify(Array.from(this)));
    } catch (err) {
      // Quota or privacy settings: the state lives until the page is left.
    }
  }
}

state.expanded = new SessionSet(EXPANDED_STORAGE_KEY);
