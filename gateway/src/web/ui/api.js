// The API client. index.html sets a <base> to the directory the browser sees the page in
// (<prefix>/); every request made here is relative to that prefix, so the page works under
// --web.route-prefix, --web.external-url and behind proxies that rewrite the path.

const PLACEHOLDER = '__PATH_' + 'PREFIX__'; // split so no server substitution can touch it

function meta(name) {
  const el = document.querySelector('meta[name="' + name + '"]');
  return el ? el.getAttribute('content') || '' : '';
}

// The path prefix as the browser sees it. index.html sets a <base> to the page's directory;
// without it (inline scripts blocked), use the server's external prefix, else the location.
function pathPrefix() {
  if (document.querySelector('base[data-pgw]')) {
    return new URL(document.baseURI).pathname.replace(/\/+$/, '');
  }
  let p = meta('pgw-path-prefix');
  if (p.indexOf(PLACEHOLDER) !== -1) {
    p = location.pathname.replace(/\/(status|index\.html)?$/, '');
  }
  return p.replace(/\/+$/, '');
}

export const prefix = pathPrefix();

async function api(method, path) {
  const res = await fetch(prefix + path, {
    method: method,
    headers: { Accept: 'application/json' },
    cache: 'no-store',
  });
  if (!res.ok) {
    let detail = '';
    try {
      detail = (await res.text()).trim();
    } catch (e) {
      /* ignore */
    }
    throw new Error('HTTP ' + res.status + (detail ? ': ' + detail.slice(0, 300) : ''));
  }
  return res;
}

// Every group, as api/v1/metrics lists them.
export async function fetchGroups() {
  const res = await api('GET', '/api/v1/metrics');
  const body = await res.json();
  if (!body || body.status !== 'success' || !Array.isArray(body.data)) {
    throw new Error('unexpected response from api/v1/metrics');
  }
  return body.data;
}

// The data of api/v1/status: flags, build information, start time.
export async function fetchStatus() {
  const res = await api('GET', '/api/v1/status');
  const body = await res.json();
  if (!body || body.status !== 'success' || !body.data) throw new Error('unexpected response from api/v1/status');
  return body.data;
}

// Deletes the group with these [name, value] label pairs. Every value goes base64-encoded,
// so any value (empty, with slashes) reaches the server as it is.
export async function deleteGroup(pairs) {
  let path = '/metrics';
  const job = pairs.find((p) => p[0] === 'job');
  path += '/job@base64/' + base64url(job ? job[1] : '');
  for (const p of pairs) {
    if (p[0] === 'job') continue;
    path += '/' + encodeURIComponent(p[0]) + '@base64/' + base64url(p[1]);
  }
  await api('DELETE', path);
}

// The groups a PromQL selector selects (api/v1/groups), as [{labels, last_push, series}].
export async function fetchMatching(selector) {
  const res = await api('GET', '/api/v1/groups?' + new URLSearchParams([['match[]', selector]]).toString());
  const body = await res.json();
  if (!body || body.status !== 'success' || !Array.isArray(body.data)) throw new Error('unexpected response from api/v1/groups');
  return body.data;
}

// Deletes the groups a selector selects (admin API), or with dryRun only lists them:
// {deleted, dry_run, matched, groups}.
export async function deleteMatching(selector, dryRun) {
  const query = new URLSearchParams([['match[]', selector], ['dry_run', dryRun ? 'true' : 'false']]);
  const res = await api('DELETE', '/api/v1/groups?' + query.toString());
  const body = await res.json();
  if (!body || body.status !== 'success' || !body.data) throw new Error('unexpected response from api/v1/groups');
  return body.data;
}

// Deletes every group (admin API).
export async function wipe() {
  await api('PUT', '/api/v1/admin/wipe');
}

// URL-safe base64 of the UTF-8 bytes, without padding; "=" alone for the empty string.
function base64url(s) {
  if (s === '') return '=';
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
