// The groups of api/v1/metrics as the page works with them: label order, sort order,
// counts and times, and the label filter. No DOM, no requests.

import { INTERNAL_FAMILIES } from './state.js?v=__VERSION__';

// One group of the API response. Only what sorting needs is computed up front; the rest
// (labels as pairs, key, counts, times, filter text) on first use, i.e. for the groups
// actually shown or filtered, which keeps loading 10,000 groups fast.
export class Group {
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

function firstValue(family) {
  if (!family || !Array.isArray(family.metrics) || !family.metrics.length) return 0;
  const v = parseFloat(family.metrics[0].value);
  return isFinite(v) ? v : 0;
}

// Natural, case-insensitive order ("host-2" before "host-10") by plain string comparison of
// precomputed keys: digit runs zero-padded, which is much faster than a collator on 10k groups.
function naturalKey(v) {
  v = v.toLowerCase();
  if (!/\d/.test(v)) return v;
  return v.replace(/\d+/g, (d) => (d.length < 16 ? '0000000000000000'.slice(d.length) + d : d));
}

export function compareGroups(a, b) {
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

// The groups matching the filter text, selected by the matcher (keys, null for none) and,
// with onlyFailed, whose last push failed.
export function filterGroups(groups, query, onlyFailed, matcherKeys) {
  const terms = parseQuery(query);
  if (!terms.length && !onlyFailed && !matcherKeys) return groups;
  return groups.filter((g) => {
    if (matcherKeys && !matcherKeys.has(g.key)) return false;
    if (onlyFailed && !g.failed) return false;
    for (const t of terms) if (g.search.indexOf(t) === -1) return false;
    return true;
  });
}
