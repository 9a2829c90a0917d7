// ludex web UI: progressive enhancement of the server-rendered pages. Every page works for
// reading without this file; with it, the catalog filters as you type, and the forms, the
// cover and the uploads talk to the JSON API, signed in by the session cookie plus the
// session's CSRF token in the X-CSRF-Token header.
(function () {
  'use strict';

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const csrfMeta = $('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : '';

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Calls the JSON API with the session's CSRF token. */
  function api(method, url, options) {
    const opts = options || {};
    const headers = Object.assign({ Accept: 'application/json' }, opts.headers || {});
    if (csrf && method !== 'GET') headers['X-CSRF-Token'] = csrf;
    return fetch(url, { method, headers, body: opts.body, credentials: 'same-origin', cache: 'no-store' });
  }

  /** The problem document of a failed response (RFC 9457), or a stand-in. */
  async function problem(response) {
    try {
      const body = await response.json();
      return { detail: body.detail || body.title || 'The request failed.', errors: body.errors || [], body };
    } catch (_) {
      return { detail: `The server answered ${response.status} ${response.statusText}.`, errors: [], body: {} };
    }
  }

  function setStatus(node, text, kind) {
    if (!node) return;
    node.textContent = text;
    node.classList.toggle('error', kind === 'error');
    node.classList.toggle('ok', kind === 'ok');
  }

  // ---------------------------------------------------------------- catalog
  function enhanceCatalog() {
    const form = $('form[data-live]');
    const results = $('#results');
    if (!form || !results) return;
    const loading = $('.loading');
    let controller = null;
    let timer = null;

    function urlOf(formNode) {
      const params = new URLSearchParams();
      for (const [name, value] of new FormData(formNode)) {
        const v = String(value).trim();
        if (v === '' || (name === 'sort' && v === '-updated_at')) continue;
        params.append(name, v);
      }
      const query = params.toString();
      return '/' + (query ? '?' + query : '');
    }

    async function load(url, push) {
      if (controller) controller.abort();
      controller = new AbortController();
      results.setAttribute('aria-busy', 'true');
      if (loading) loading.hidden = false;
      try {
        const response = await fetch(url, { headers: { Accept: 'text/html' }, signal: controller.signal, credentials: 'same-origin' });
        const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
        const fresh = doc.getElementById('results');
        if (!fresh) throw new Error(`the server answered ${response.status}`);
        results.innerHTML = fresh.innerHTML;
        if (push) history.pushState({ url }, '', url);
        else history.replaceState({ url }, '', url);
      } catch (error) {
        if (error.name === 'AbortError') return;
        results.replaceChildren(el('div', { class: 'notice error', role: 'alert' },
          el('p', { text: `The catalog could not be loaded (${error.message}). Check your connection and try again.` })));
      } finally {
        results.removeAttribute('aria-busy');
        if (loading) loading.hidden = true;
      }
    }

    form.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => load(urlOf(form), false), 300);
    });
    form.addEventListener('change', (event) => {
      if (event.target.tagName === 'SELECT') { clearTimeout(timer); load(urlOf(form), false); }
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      clearTimeout(timer);
      load(urlOf(form), true);
    });
    results.addEventListener('click', (event) => {
      const link = event.target.closest('a[data-nav]');
      if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      const target = new URL(link.href);
      const sort = target.searchParams.get('sort');
      const select = $('#f-sort');
      if (select && sort) select.value = sort;
      load(target.pathname + target.search, true).then(() => results.scrollIntoView({ block: 'nearest' }));
    });
    window.addEventListener('popstate', () => { location.reload(); });
  }

  // ---------------------------------------------------------------- game form
  const fieldBase = (field) => String(field || '').split(/[[.]/)[0];

  function formBody(form, mode) {
    const body = {};
    for (const input of $$('[data-kind]', form)) {
      const raw = input.value.trim();
      const kind = input.dataset.kind;
      if (mode === 'edit' && input.name === 'id') continue;
      if (raw === '') {
        if (mode === 'edit') body[input.name] = null;
        continue;
      }
      if (kind === 'list') body[input.name] = splitList(raw);
      // Numbers go as numbers when they look like one; anything else as typed, so the API
      // says what is wrong with it in its own words.
      else if (kind === 'number') body[input.name] = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
      else body[input.name] = raw;
    }
    return body;
  }

  function clearErrors(form) {
    for (const node of $$('.field-error', form)) { node.hidden = true; node.textContent = ''; }
    for (const node of $$('[aria-invalid]', form)) node.removeAttribute('aria-invalid');
    const summary = $('#form-errors');
    if (summary) { summary.hidden = true; summary.replaceChildren(); }
  }

  function showErrors(form, detail, errors, extra) {
    const summary = $('#form-errors');
    const list = el('ul');
    for (const error of errors) {
      const base = fieldBase(error.field);
      const input = error.field ? $(`#g-${CSS.escape(base)}`, form) : null;
      const text = error.field ? `${error.field}: ${error.reason}` : error.reason;
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        const slot = $(`#g-${CSS.escape(base)}-error`, form);
        if (slot) {
          slot.textContent = slot.textContent ? `${slot.textContent}; ${text}` : text;
          slot.hidden = false;
        }
        list.append(el('li', {}, el('a', { href: `#g-${base}` }, text)));
      } else {
        list.append(el('li', { text }));
      }
    }
    summary.replaceChildren(el('p', {}, el('strong', { text: detail })));
    if (errors.length) summary.append(list);
    if (extra) summary.append(extra);
    summary.hidden = false;
    summary.focus();
  }

  // List fields take one entry a line, so an entry may hold commas ("Action, Adventure").
  const splitList = (raw) => raw.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);

  function displayValue(kind, value) {
    if (value == null) return '';
    if (Array.isArray(value)) return value.join('\n');
    if (kind === 'number' && typeof value === 'number') return String(value);
    return String(value);
  }

  function sameValue(kind, a, b) {
    if (kind === 'number' && a !== '' && b !== '' && !Number.isNaN(Number(a)) && !Number.isNaN(Number(b))) {
      return Number(a) === Number(b);
    }
    if (kind === 'list') {
      return splitList(a).join('\n') === splitList(b).join('\n');
    }
    return a === b;
  }

  function enhanceGameForm() {
    const form = $('#game-form');
    if (!form) return;
    const status = $('#form-status');
    const conflict = $('#conflict');
    const mode = form.dataset.mode;
    let saving = false;

    async function save() {
      if (saving) return;
      saving = true;
      const button = $('button[type="submit"]', form);
      button.disabled = true;
      clearErrors(form);
      setStatus(status, 'Saving…');
      try {
        const body = JSON.stringify(formBody(form, mode));
        const response = mode === 'edit'
          ? await api('PATCH', `/games/${encodeURIComponent(form.dataset.id)}`, {
            body, headers: { 'Content-Type': 'application/merge-patch+json', 'If-Match': `"${form.dataset.version}"` },
          })
          : await api('POST', '/games', { body, headers: { 'Content-Type': 'application/json' } });
        if (response.ok) {
          const game = await response.json();
          setStatus(status, 'Saved.', 'ok');
          location.assign(`/ui/games/${encodeURIComponent(game.id)}`);
          return;
        }
        const p = await problem(response);
        setStatus(status, '');
        if (response.status === 412) {
          await showConflict(p.body.current_version);
        } else if (response.status === 401 || response.status === 403) {
          showErrors(form, p.detail, [], el('p', {}, el('a', { href: `/ui/sign-in?next=${encodeURIComponent(location.pathname)}` }, 'Sign in again')));
        } else if (response.status === 409) {
          showErrors(form, p.detail, [{ field: 'id', reason: p.detail }]);
        } else {
          showErrors(form, p.detail, p.errors);
        }
      } catch (error) {
        setStatus(status, '');
        showErrors(form, `The server could not be reached (${error.message}); nothing was saved. Try again.`, []);
      } finally {
        saving = false;
        button.disabled = false;
      }
    }

    async function showConflict() {
      const response = await api('GET', `/games/${encodeURIComponent(form.dataset.id)}`);
      if (!response.ok) {
        const p = await problem(response);
        showErrors(form, `Someone else changed this game, and it could not be read again: ${p.detail}`, []);
        return;
      }
      const theirs = await response.json();
      const rows = $('#conflict-rows');
      rows.replaceChildren();
      for (const input of $$('[data-kind]', form)) {
        const kind = input.dataset.kind;
        const mine = input.value.trim();
        const saved = displayValue(kind, theirs[input.name]);
        const differs = !sameValue(kind, mine, saved);
        const label = $(`label[for="${input.id}"]`, form);
        rows.append(el('tr', {},
          el('th', { scope: 'row', text: label ? label.textContent : input.name }),
          el('td', { class: differs ? 'differs' : '', text: mine || '—' }),
          el('td', { class: differs ? 'differs' : '', text: saved || '—' })));
      }
      $('#conflict-theirs').textContent = `Saved version (version ${theirs.version}, ${theirs.updated_at})`;
      conflict.dataset.version = theirs.version;
      conflict.theirs = theirs;
      conflict.hidden = false;
      conflict.focus();
      conflict.scrollIntoView({ block: 'start' });
    }

    form.addEventListener('submit', (event) => { event.preventDefault(); save(); });
    for (const input of $$('[data-kind]', form)) {
      input.addEventListener('input', () => {
        if (input.getAttribute('aria-invalid') === 'true') {
          input.removeAttribute('aria-invalid');
          const slot = $(`#${input.id}-error`);
          if (slot) slot.hidden = true;
        }
      });
    }
    if (conflict) {
      conflict.addEventListener('click', (event) => {
        const choice = event.target.closest('button[data-keep]');
        if (!choice) return;
        form.dataset.version = conflict.dataset.version;
        if (choice.dataset.keep === 'theirs') {
          for (const input of $$('[data-kind]', form)) {
            input.value = displayValue(input.dataset.kind, conflict.theirs[input.name]);
          }
          conflict.hidden = true;
          setStatus(status, `Loaded the saved version (version ${conflict.dataset.version}). Change it and save, or cancel.`, 'ok');
          $('[data-kind]', form).focus();
        } else {
          conflict.hidden = true;
          save();
        }
      });
    }
  }

  // ---------------------------------------------------------------- game page
  function enhanceGamePage() {
    const game = $('#game');
    if (!game) return;
    const id = game.dataset.id;
    const message = $('#game-message');
    const say = (text, kind) => {
      message.replaceChildren(el('p', { text }));
      message.className = `notice ${kind || ''}`;
      message.hidden = false;
    };

    const dialog = $('#delete-dialog');
    const deleteButton = $('button[data-delete]', game);
    if (dialog && deleteButton) {
      deleteButton.addEventListener('click', () => dialog.showModal());
      dialog.addEventListener('close', async () => {
        if (dialog.returnValue !== 'delete') { deleteButton.focus(); return; }
        say('Deleting…');
        try {
          const response = await api('DELETE', `/games/${encodeURIComponent(id)}`, { headers: { 'If-Match': `"${game.dataset.version}"` } });
          if (response.status === 204) { location.assign(`/?deleted=${encodeURIComponent(id)}`); return; }
          const p = await problem(response);
          say(response.status === 412
            ? 'Someone else changed this game since you opened it, so it was not deleted. Reload the page to see their version.'
            : p.detail, 'error');
        } catch (error) {
          say(`The server could not be reached (${error.message}); nothing was deleted.`, 'error');
        }
      });
    }

    const coverForm = $('#cover-form');
    if (coverForm) {
      const file = $('#cover-file');
      const preview = $('#cover-preview');
      const status = $('#cover-status');
      let previewUrl = null;
      file.addEventListener('change', () => {
        if (previewUrl) URL.revokeObjectURL(previewUrl);
        const chosen = file.files[0];
        if (!chosen) { preview.parentElement.hidden = true; return; }
        previewUrl = URL.createObjectURL(chosen);
        preview.src = previewUrl;
        preview.parentElement.hidden = false;
        setStatus(status, `${chosen.name}, ${Math.ceil(chosen.size / 1024)} KiB: ready to upload.`);
      });
      coverForm.addEventListener('submit', async (event) => {
        event.preventDefault();
        const chosen = file.files[0];
        if (!chosen) { setStatus(status, 'Choose an image first.', 'error'); file.focus(); return; }
        const button = $('button[type="submit"]', coverForm);
        button.disabled = true;
        setStatus(status, 'Uploading the cover…');
        try {
          const response = await api('PUT', `/games/${encodeURIComponent(id)}/cover`, {
            body: chosen,
            headers: { 'Content-Type': chosen.type || 'application/octet-stream', 'If-Match': `"${game.dataset.version}"` },
          });
          if (!response.ok) {
            const p = await problem(response);
            setStatus(status, response.status === 412
              ? 'Someone else changed this game since you opened it; reload the page and upload again.'
              : p.detail, 'error');
            return;
          }
          const saved = await response.json();
          game.dataset.version = saved.version;
          const img = el('img', { id: 'cover-image', src: `/games/${encodeURIComponent(id)}/cover?v=${saved.version}`, alt: `Cover of ${game.dataset.title}`, width: '240' });
          $('#cover-image').replaceWith(img);
          setStatus(status, 'Cover uploaded.', 'ok');
        } catch (error) {
          setStatus(status, `The server could not be reached (${error.message}).`, 'error');
        } finally {
          button.disabled = false;
        }
      });
    }
  }

  // ---------------------------------------------------------------- uploads
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function uploadName(name) {
    let clean = name.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
    if (clean.length > 128) clean = clean.slice(clean.length - 128).replace(/^[^A-Za-z0-9]+/, '');
    return clean || 'upload.ndjson';
  }

  function contentType(name) {
    if (/\.gz$/i.test(name)) return 'application/gzip';
    if (/\.(ndjson|jsonl)$/i.test(name)) return 'application/x-ndjson';
    return 'application/json';
  }

  function position(reject) {
    if (reject.line != null) return `line ${reject.line}`;
    if (reject.index != null) return `index ${reject.index}`;
    return '';
  }

  function enhanceUploads() {
    const form = $('#upload-form');
    if (!form) return;
    const input = $('#upload-file');
    const zone = $('#dropzone');
    const progressBox = $('.progress', form);
    const progress = $('#upload-progress');
    const label = $('#upload-label');
    const status = $('#upload-status');
    const result = $('#ingest-result');
    let busy = false;

    // The file goes straight to the bucket: a URL from POST /uploads/presign (the server's own
    // with a folder bucket, an S3 presigned URL on AWS, where a request body is limited), sent
    // with exactly the headers it was signed for (the browser sets Content-Length itself).
    async function presign(file) {
      const name = uploadName(file.name);
      const response = await api('POST', `/uploads/presign?filename=${encodeURIComponent(name)}&size=${file.size}`);
      if (!response.ok) throw new Error((await problem(response)).detail);
      return Object.assign(await response.json(), { name });
    }

    function send(file, grant) {
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open(grant.method, grant.url);
        for (const [name, value] of Object.entries(grant.headers)) {
          if (name.toLowerCase() !== 'content-length') xhr.setRequestHeader(name, value);
        }
        xhr.upload.addEventListener('progress', (event) => {
          if (!event.lengthComputable) return;
          const percent = Math.round((event.loaded / event.total) * 100);
          progress.value = percent;
          label.textContent = `Uploading ${file.name}: ${percent}%`;
        });
        xhr.addEventListener('load', () => {
          let body = {};
          try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON: S3 answers XML */ }
          // ludex answers 202 with the ingest's id; S3 answers 200 with the object's ETag,
          // which the ledger entry of its ingest will carry as its fingerprint.
          if (xhr.status === 202) resolve({ ingest: `/ingests/${body.ingest_id}` });
          else if (xhr.status === 200) resolve({ ingest: `/uploads/${encodeURIComponent(grant.name)}`, etag: (xhr.getResponseHeader('ETag') || '').replace(/"/g, '') });
          else reject(new Error(body.detail || `the bucket answered ${xhr.status}`));
        });
        xhr.addEventListener('error', () => reject(new Error('the server could not be reached')));
        xhr.addEventListener('abort', () => reject(new Error('the upload was cancelled')));
        xhr.send(file);
      });
    }

    async function follow(sent) {
      for (let attempt = 0; attempt < 600; attempt += 1) {
        const response = await api('GET', sent.ingest);
        // An upload sent to S3 has no entry until its event reaches the ingest.
        if (response.status === 404 && sent.etag !== undefined) {
          await sleep(attempt < 20 ? 300 : 1000);
          continue;
        }
        if (!response.ok) throw new Error((await problem(response)).detail);
        const record = await response.json();
        const ours = sent.etag === undefined || record.fingerprint === sent.etag;
        if (ours && record.status !== 'queued' && record.status !== 'running') return record;
        setStatus(status, `Uploaded. Ingesting… (${ours ? record.status : 'waiting'})`);
        await sleep(attempt < 20 ? 300 : 1000);
      }
      throw new Error('the ingest is taking long; follow it in the history below');
    }

    async function showResult(record) {
      const badge = el('span', { class: `badge badge-${record.status}`, text: record.status.replace('_', ' ') });
      const summary = el('div', { class: record.rejected ? 'notice error' : 'notice success' },
        el('p', {}, el('strong', { text: record.key.split('/').pop() }), ' ', badge),
        el('p', { text: `${record.accepted} accepted (${record.inserted} new, ${record.updated} updated, ${record.unchanged} unchanged), ${record.rejected} rejected.` }),
        record.error ? el('p', { text: record.error }) : null,
        el('p', {}, el('a', { href: `/ui/ingests/${record.id}` }, 'Open this ingest')));
      result.replaceChildren(summary);
      if (record.rejected > 0) {
        const response = await api('GET', `/ingests/${record.id}/rejects`);
        if (!response.ok) return;
        const list = await response.json();
        const rows = el('tbody');
        for (const reject of list.items) {
          for (const error of reject.errors) {
            rows.append(el('tr', {},
              el('td', { text: position(reject) }),
              el('td', { text: reject.id || '–' }),
              el('td', { text: error.field == null ? '(record)' : error.field }),
              el('td', { text: error.reason })));
          }
        }
        result.append(el('h3', { text: 'Rejected records' }),
          el('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': 'Rejected records' },
            el('table', { class: 'rejects' },
              el('thead', {}, el('tr', {},
                el('th', { scope: 'col', text: 'Position' }), el('th', { scope: 'col', text: 'Id' }),
                el('th', { scope: 'col', text: 'Field' }), el('th', { scope: 'col', text: 'Reason' }))),
              rows)));
      }
    }

    async function refreshHistory() {
      try {
        const response = await fetch('/ui/uploads', { headers: { Accept: 'text/html' }, credentials: 'same-origin' });
        const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
        const fresh = doc.querySelector('section[aria-labelledby="history-heading"]');
        const current = $('section[aria-labelledby="history-heading"]');
        if (fresh && current) current.replaceWith(fresh);
      } catch (_) { /* the history is refreshed on the next visit */ }
    }

    async function upload(file) {
      if (busy || !file) return;
      busy = true;
      result.replaceChildren();
      progressBox.hidden = false;
      progress.value = 0;
      label.textContent = `Uploading ${file.name}: 0%`;
      setStatus(status, '');
      try {
        const sent = await send(file, await presign(file));
        progress.value = 100;
        label.textContent = `Uploaded ${file.name}`;
        setStatus(status, 'Uploaded. Ingesting…');
        const record = await follow(sent);
        setStatus(status, 'Done.', 'ok');
        await showResult(record);
        await refreshHistory();
      } catch (error) {
        setStatus(status, `The upload failed: ${error.message}.`, 'error');
      } finally {
        busy = false;
        input.value = '';
      }
    }

    input.addEventListener('change', () => upload(input.files[0]));
    zone.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); input.click(); }
    });
    for (const name of ['dragenter', 'dragover']) {
      zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add('dragging'); });
    }
    for (const name of ['dragleave', 'drop']) {
      zone.addEventListener(name, () => zone.classList.remove('dragging'));
    }
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) upload(file);
    });
  }

  // ---------------------------------------------------------------- ingest page
  function enhanceIngestPage() {
    const refresh = $('[data-refresh]');
    if (refresh) setTimeout(() => location.reload(), Number(refresh.dataset.refresh) * 1000);
  }

  // Browsers differ in whether following "#main" moves focus there; make sure it does.
  function enhanceSkipLink() {
    const skip = $('.skip');
    const main = $('#main');
    if (skip && main) {
      skip.addEventListener('click', (event) => {
        event.preventDefault();
        main.focus();
        main.scrollIntoView();
      });
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    enhanceSkipLink();
    enhanceCatalog();
    enhanceGameForm();
    enhanceGamePage();
    enhanceUploads();
    enhanceIngestPage();
  });
})();
