// The page's fixed parts: element lookup, the notice bar and the confirmation dialog.

export function $(id) {
  return document.getElementById(id);
}

let noticeTimer = 0;
export function notice(text, kind) {
  const el = $('notice');
  el.textContent = text;
  el.className = 'notice ' + (kind || 'info');
  el.hidden = false;
  clearTimeout(noticeTimer);
  if (kind !== 'error') noticeTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

export function bindNotice() {
  $('notice').addEventListener('click', () => { $('notice').hidden = true; });
}

export function confirmDialog(title, bodyHtml, okText) {
  const dlg = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-body').innerHTML = bodyHtml;
  $('confirm-ok').textContent = okText || 'Delete';
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    if (typeof dlg.showModal === 'function') {
      dlg.showModal();
      $('confirm-cancel').focus();
    } else {
      // Very old browsers: fall back to the native prompt.
      resolve(window.confirm(title));
    }
  });
}
