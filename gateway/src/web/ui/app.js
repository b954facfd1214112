// Pushgateway web UI. Plain JavaScript modules, no framework, no build step, no external
// requests. index.html loads this module; it imports the others, each with the version in
// its URL (the gateway fills it in when it serves them) so that an upgrade never mixes
// cached files of two versions:
// - state.js: the shared state and constants
// - format.js: escaping and formatting of counts, times and labels
// - api.js: the API client, relative to the path prefix the browser sees
// - groups.js: the groups of api/v1/metrics, their order and the filter
// - matcher.js: the matcher box (api/v1/groups) and the bulk delete with its dry run
// - dom.js: element lookup, the notice bar, the confirmation dialog
// - render.js, status.js: rendering the metrics tab and the status tab
// - load.js: loading from the API, then rendering
// - navigation.js: the URL state and the tabs
// - controls.js: deleting, and every event handler

import { bindControls } from './controls.js?v=__VERSION__';
import { bindNotice } from './dom.js?v=__VERSION__';
import { loadMetrics, loadStatus } from './load.js?v=__VERSION__';
import { readUrl, showTab } from './navigation.js?v=__VERSION__';
import { state } from './state.js?v=__VERSION__';

// Modules run once the document is parsed, so every element is there.
bindNotice();
bindControls();
readUrl();
showTab(state.tab);
loadMetrics();
if (state.tab !== 'status') loadStatus(); // for the admin button (showTab loads it on the status tab)
