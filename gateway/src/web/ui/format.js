// Text and HTML formatting: escaping, counts, times, label pairs. No state, no requests.

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ESC[c]);
}

export function plural(n, one, many) {
  return fmtInt(n) + ' ' + (n === 1 ? one : many || one + 's');
}

export function fmtInt(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function pad(n, w) {
  return String(n).padStart(w || 2, '0');
}

// "2026-11-22 01:19:20 UTC": unambiguous, the same for every viewer.
export function fmtAbs(ms) {
  const d = new Date(ms);
  if (isNaN(d.getTime())) return '';
  return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
    pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + ' UTC';
}

export function fmtDuration(sec) {
  sec = Math.max(0, Math.floor(sec));
  if (sec < 60) return sec + 's';
  const m = Math.floor(sec / 60);
  if (m < 60) return m + 'm ' + (sec % 60) + 's';
  const h = Math.floor(m / 60);
  if (h < 48) return h + 'h ' + (m % 60) + 'm';
  const d = Math.floor(h / 24);
  return d + 'd ' + (h % 24) + 'h';
}

export function fmtRel(ms) {
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

export function timeHtml(ms) {
  return '<time datetime="' + esc(new Date(ms).toISOString()) + '" data-ts="' + ms + '" title="' +
    esc(fmtAbs(ms)) + '">' + esc(fmtRel(ms)) + '</time>';
}

export function labelHtml(name, value) {
  const v = JSON.stringify(String(value));
  return '<span class="label" title="' + esc(name + '=' + v) + '"><span class="ln">' + esc(name) +
    '</span>=<span class="lv">' + esc(v) + '</span></span>';
}
