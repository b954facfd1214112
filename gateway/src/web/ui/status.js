// Rendering the status tab: runtime information, build information and flags.

import { $ } from './dom.js?v=__VERSION__';
import { esc, fmtAbs, fmtDuration, fmtInt } from './format.js?v=__VERSION__';
import { state } from './state.js?v=__VERSION__';

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

export function renderStatus() {
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
