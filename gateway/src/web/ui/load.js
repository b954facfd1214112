// Loading the groups and the status from the API into the state, then rendering them.

import { fetchGroups, fetchStatus } from './api.js?v=__VERSION__';
import { applyMatcher, updateDeleteButton } from './matcher.js?v=__VERSION__';
import { $, notice } from './dom.js?v=__VERSION__';
import { Group, compareGroups } from './groups.js?v=__VERSION__';
import { renderGroups } from './render.js?v=__VERSION__';
import { state, timings } from './state.js?v=__VERSION__';
import { renderStatus } from './status.js?v=__VERSION__';

export async function loadMetrics() {
  state.loading = true;
  $('groups').setAttribute('aria-busy', 'true');
  try {
    const t0 = performance.now();
    const data = await fetchGroups();
    // The matcher's selection is refreshed with the groups, so both describe one moment.
    if (state.matcher.trim()) await applyMatcher();
    timings.fetched = performance.now();
    timings.fetchMs = timings.fetched - t0;
    let groups = new Array(data.length);
    for (let i = 0; i < groups.length; i++) groups[i] = new Group(data[i]);
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

export async function loadStatus() {
  try {
    const data = await fetchStatus();
    state.status = data;
    const flags = data.flags || {};
    state.admin = String(flags['web.enable-admin-api']) === 'true';
    $('wipe').hidden = !state.admin;
    updateDeleteButton();
    renderStatus();
  } catch (err) {
    notice('Could not load the status: ' + err.message, 'error');
  }
}
