// The matcher box: a PromQL selector ({job="batch",instance=~"w.*"}) that the server
// evaluates (api/v1/groups), narrowing the list to the groups it selects; and the bulk
// delete of those groups (admin API), which always shows the server's dry run first.

import { deleteMatching, fetchMatching } from './api.js?v=__VERSION__';
import { $, confirmDialog, notice } from './dom.js?v=__VERSION__';
import { labelHtml, plural } from './format.js?v=__VERSION__';
import { Group } from './groups.js?v=__VERSION__';
import { state } from './state.js?v=__VERSION__';

// Groups listed in the confirmation before "and N more".
const CONFIRM_LIST = 20;

// The keys (as Group.key) of the groups a listing returned.
function keysOf(data) {
  const keys = new Set();
  for (const raw of data) keys.add(new Group({ labels: raw.labels }).key);
  return keys;
}

// Asks the server which groups the box's selector selects; an empty box clears the filter.
// Returns false (and says why) when the server refuses the selector.
export async function applyMatcher() {
  const selector = state.matcher.trim();
  $('matcher').removeAttribute('aria-invalid');
  if (!selector) {
    state.matcherKeys = null;
    updateDeleteButton();
    return true;
  }
  try {
    state.matcherKeys = keysOf(await fetchMatching(selector));
  } catch (err) {
    state.matcherKeys = new Set();
    $('matcher').setAttribute('aria-invalid', 'true');
    notice('Invalid matcher: ' + err.message, 'error');
    updateDeleteButton();
    return false;
  }
  updateDeleteButton();
  return true;
}

// The bulk delete is offered with the admin API and a selector in the box.
export function updateDeleteButton() {
  $('delete-matching').hidden = !state.admin || !state.matcher.trim();
}

// Dry run, confirmation listing what it found, then the delete itself.
export async function deleteMatchingGroups(afterDelete) {
  const selector = state.matcher.trim();
  let dry;
  try {
    dry = await deleteMatching(selector, true);
  } catch (err) {
    notice('Could not list the matching groups: ' + err.message, 'error');
    return;
  }
  const groups = dry.groups || [];
  if (!groups.length) {
    notice('No group matches ' + selector + '; nothing to delete.');
    return;
  }
  let list = '';
  for (const raw of groups.slice(0, CONFIRM_LIST)) {
    const g = new Group({ labels: raw.labels });
    list += '<li class="dialog-labels">' + g.pairs.map((p) => labelHtml(p[0], p[1])).join('') + '</li>';
  }
  const more = groups.length > CONFIRM_LIST ? '<p>… and ' + plural(groups.length - CONFIRM_LIST, 'more group') + '.</p>' : '';
  const ok = await confirmDialog('Delete ' + plural(groups.length, 'group') + '?',
    '<p>The matcher selects these groups (dry run, nothing deleted yet):</p><ul class="dry-run">' + list + '</ul>' + more +
    '<p>Deleting them uses the admin API. It cannot be undone.</p>', 'Delete ' + plural(groups.length, 'group'));
  if (!ok) return;
  let done;
  try {
    done = await deleteMatching(selector, false);
  } catch (err) {
    notice('Could not delete the groups: ' + err.message, 'error');
    return;
  }
  notice('Deleted ' + plural(done.deleted, 'group') + ' matching ' + selector + '.');
  afterDelete(keysOf(done.groups || []));
}
