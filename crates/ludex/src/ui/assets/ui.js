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

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /**
   * Runs a job of steps to its end: POSTs body(cursor) to url, hands each step's answer to
   * onStep, and goes on from its next_cursor until there is none. A 429, or a step stopped by
   * the write limit, waits as told (onWait is told how long).
   */
  async function runSteps(url, body, onStep, onWait) {
    let cursor = null;
    for (;;) {
      const response = await api('POST', url, {
        body: JSON.stringify(body(cursor)),
        headers: { 'Content-Type': 'application/json' },
      });
      if (response.status === 429) {
        const wait = Number(response.headers.get('Retry-After') || '5');
        onWait(wait);
        await sleep(wait * 1000);
        continue;
      }
      if (!response.ok) throw new Error((await problem(response)).detail);
      const step = await response.json();
      onStep(step);
      if (step.next_cursor == null) return;
      if (step.retry_after) await sleep(step.retry_after * 1000);
      cursor = step.next_cursor;
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
        results.dispatchEvent(new Event('results:loaded'));
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

  // ---------------------------------------------------------------- grid
  // The catalog for those who may write: a grid of cells (roving focus: one Tab stop, arrows and
  // Tab inside), edited in place. Each save is a PATCH with If-Match; a field error shows in the
  // cell in the API's words; a conflict shows both values and lets you choose. Rows can be
  // ticked and edited together through POST /games/batch, and the last bulk edit undone.
  const GRID_UNDO = 'ludex.grid.undo';

  function gridCellText(kind, field, value) {
    if (value == null) return '';
    if (Array.isArray(value)) return value.join(', ');
    if (field === 'rating' && typeof value === 'number') return value.toFixed(1);
    return String(value);
  }

  function enhanceGrid() {
    const results = $('#results');
    if (!results || !csrf) return;
    let suggestions = null;
    let editing = null; // { cell, editor, chips, input, kind, field }
    let anchor = null; // the last row ticked, for Shift-click ranges
    let matching = null; // { count } once "all games matching this filter" is selected

    const grid = () => $('#grid', results);
    const rows = () => $$('#grid tbody tr', results);
    const cellsOf = (row) => $$(':scope > td, :scope > th', row).filter((c) => c.dataset.field || c.classList.contains('select'));
    const gameOf = (row) => (row.dataset.game ? JSON.parse(row.dataset.game) : null);

    function setActive(cell, focus) {
      const g = grid();
      if (!g || !cell) return;
      for (const other of $$('[tabindex="0"]', g)) if (other !== cell) other.setAttribute('tabindex', '-1');
      cell.setAttribute('tabindex', '0');
      if (focus) cell.focus();
    }

    function prepare() {
      const g = grid();
      if (!g) return;
      for (const row of rows()) for (const cell of cellsOf(row)) cell.setAttribute('tabindex', '-1');
      const first = rows()[0];
      if (first) setActive(cellsOf(first)[1] || cellsOf(first)[0], false);
      updateBulkBar();
    }

    async function loadSuggestions() {
      if (suggestions) return suggestions;
      suggestions = { platforms: [], genres: [], tags: [] };
      try {
        const response = await api('GET', '/ui/suggestions');
        if (response.ok) Object.assign(suggestions, await response.json());
      } catch (_) { /* suggestions are a help, not a need */ }
      const tags = new Set();
      for (const row of rows()) for (const tag of (gameOf(row) || {}).tags || []) tags.add(tag);
      suggestions.tags = [...tags].sort();
      return suggestions;
    }

    function datalistFor(field) {
      const id = `suggest-${field}`;
      let list = document.getElementById(id);
      if (!list) {
        list = el('datalist', { id });
        document.body.append(list);
      }
      list.replaceChildren(...((suggestions && suggestions[field]) || []).map((v) => el('option', { value: v })));
      return id;
    }

    function message(cell, text, kind) {
      let note = $('.cell-note', cell);
      if (!text) { if (note) note.remove(); cell.removeAttribute('aria-invalid'); return; }
      if (!note) { note = el('div', { class: 'cell-note', role: 'alert' }); cell.append(note); }
      note.className = `cell-note ${kind || 'error'}`;
      note.replaceChildren(...(Array.isArray(text) ? text : [text]).map((t) => (t instanceof Node ? t : el('p', { text: t }))));
      if ((kind || 'error') === 'error') cell.setAttribute('aria-invalid', 'true');
    }

    function render(row, game) {
      row.dataset.game = JSON.stringify(game);
      row.dataset.version = game.version;
      for (const cell of cellsOf(row)) {
        const field = cell.dataset.field;
        if (!field) continue;
        const text = gridCellText(cell.dataset.kind, field, game[field]);
        if (field === 'title') {
          cell.replaceChildren(el('a', { href: `/ui/games/${encodeURIComponent(game.id)}`, tabindex: '-1' }, text));
        } else {
          cell.replaceChildren(text);
        }
      }
      const time = $('time', row);
      if (time && game.updated_at) { time.dateTime = game.updated_at; time.textContent = game.updated_at.slice(0, 10); }
      const box = $('input[data-select]', row);
      if (box) box.setAttribute('aria-label', `Select ${game.title}`);
    }

    function newRow(game) {
      const row = el('tr', { 'data-id': game.id });
      row.append(el('td', { class: 'select' }, el('input', { type: 'checkbox', 'data-select': '', tabindex: '-1', 'aria-label': `Select ${game.title}` })));
      row.append(el('td', { class: 'thumb' })); // a new game has no cover yet
      const fields = ['title', 'platforms', 'genres', 'tags', 'release_date', 'developer', 'rating'];
      const kinds = { title: 'text', platforms: 'list', genres: 'list', tags: 'list', release_date: 'text', developer: 'text', rating: 'number' };
      for (const field of fields) {
        const attrs = { 'data-field': field, 'data-kind': kinds[field], tabindex: '-1' };
        if (field === 'title') attrs.scope = 'row';
        if (field === 'rating') attrs.class = 'num';
        row.append(el(field === 'title' ? 'th' : 'td', attrs));
      }
      row.append(el('td', { class: 'nowrap' }, el('time')));
      render(row, game);
      return row;
    }

    function startEdit(cell, typed) {
      if (editing || !cell || !cell.dataset.field) return;
      const row = cell.closest('tr');
      if (row.dataset.new !== undefined && cell.dataset.field !== 'title') return;
      const game = gameOf(row) || {};
      const field = cell.dataset.field;
      const kind = cell.dataset.kind;
      const value = game[field];
      message(cell, null);
      const label = `${$(`#grid thead th:nth-child(${cell.cellIndex + 1})`, results)?.textContent.replace(', sort', '').trim() || field}`;
      let input;
      let chips = null;
      if (kind === 'list') {
        chips = el('span', { class: 'chips' });
        for (const entry of value || []) chips.append(chip(entry));
        input = el('input', { type: 'text', class: 'cell-input', 'aria-label': `${label}: type an entry, Enter to add it`, autocomplete: 'off' });
        cell.replaceChildren(el('div', { class: 'chip-editor' }, chips, input));
        // The editor takes keys at once; the suggestions come when they come.
        loadSuggestions().then(() => input.setAttribute('list', datalistFor(field)));
      } else {
        input = el('input', { type: 'text', class: 'cell-input', 'aria-label': label, autocomplete: 'off', inputmode: kind === 'number' ? 'decimal' : 'text' });
        input.value = typed != null ? typed : gridCellText(kind, field, value);
        cell.replaceChildren(input);
      }
      cell.classList.add('editing');
      editing = { cell, input, chips, kind, field, row };
      input.focus();
      if (typed == null && kind !== 'list') input.select();
    }

    function chip(text) {
      const remove = el('button', { type: 'button', class: 'chip-remove', tabindex: '-1', 'aria-label': `Remove ${text}` }, '×');
      return el('span', { class: 'chip', 'data-value': text }, el('span', { text }), remove);
    }

    function editedValue() {
      const { input, chips, kind } = editing;
      if (kind === 'list') {
        const entries = $$('.chip', chips).map((c) => c.dataset.value);
        const pending = input.value.trim();
        if (pending) entries.push(pending);
        return entries.length ? entries : null;
      }
      const raw = input.value.trim();
      if (raw === '') return null;
      if (kind === 'number') return /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
      return raw;
    }

    function stopEdit(restore) {
      if (!editing) return;
      const { cell, row } = editing;
      editing = null;
      cell.classList.remove('editing');
      if (restore) {
        if (row.dataset.new !== undefined) cell.replaceChildren(el('span', { class: 'muted' }, 'New game…'));
        else render(row, gameOf(row));
      }
      setActive(cell, true);
    }

    /** Saves the cell being edited; true when saved (or nothing changed). */
    async function commit() {
      if (!editing) return true;
      const { cell, row, field, input } = editing;
      const value = editedValue();
      const before = gameOf(row);
      if (before && JSON.stringify(before[field] ?? null) === JSON.stringify(value)) { stopEdit(true); return true; }
      input.disabled = true;
      let response;
      try {
        response = row.dataset.new !== undefined
          ? await api('POST', '/games', { body: JSON.stringify({ [field]: value }), headers: { 'Content-Type': 'application/json' } })
          : await api('PATCH', `/games/${encodeURIComponent(row.dataset.id)}`, {
            body: JSON.stringify({ [field]: value }),
            headers: { 'Content-Type': 'application/merge-patch+json', 'If-Match': `"${row.dataset.version}"` },
          });
      } catch (error) {
        input.disabled = false;
        input.focus();
        message(cell, `The server could not be reached (${error.message}); nothing was saved.`);
        return false;
      }
      input.disabled = false;
      if (response.ok) {
        const game = await response.json();
        if (row.dataset.new !== undefined) {
          editing = null;
          cell.classList.remove('editing');
          cell.replaceChildren(el('span', { class: 'muted' }, 'New game…'));
          const added = newRow(game);
          row.before(added);
          for (const c of cellsOf(added)) c.setAttribute('tabindex', '-1');
          announce(`Added ${game.title}.`);
          $('#grid-empty')?.remove();
          setActive(cell, true);
          return true;
        }
        render(row, game);
        editing = null;
        cell.classList.remove('editing');
        message(cell, null);
        setActive(cell, true);
        return true;
      }
      const p = await problem(response);
      if (response.status === 412) {
        await conflict(cell, row, field, value);
        return false;
      }
      const errors = p.errors.filter((e) => !e.field || fieldBase(e.field) === field);
      const lines = (errors.length ? errors : p.errors.length ? p.errors : [{ reason: p.detail }])
        .map((e) => (e.field ? `${e.field}: ${e.reason}` : e.reason));
      message(cell, lines);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return false;
    }

    async function conflict(cell, row, field, mine) {
      const response = await api('GET', `/games/${encodeURIComponent(row.dataset.id)}`);
      if (!response.ok) {
        const p = await problem(response);
        message(cell, `Someone else changed this game, and it could not be read again: ${p.detail}`);
        return;
      }
      const theirs = await response.json();
      const kind = cell.dataset.kind;
      const keepMine = el('button', { type: 'button', 'data-keep': 'mine' }, 'Keep mine');
      const takeTheirs = el('button', { type: 'button', class: 'secondary', 'data-keep': 'theirs' }, 'Take saved');
      message(cell, [
        el('p', {}, el('strong', { text: 'Someone else saved this game meanwhile.' })),
        el('p', { text: `Yours: ${gridCellText(kind, field, mine) || '—'}` }),
        el('p', { text: `Saved (version ${theirs.version}): ${gridCellText(kind, field, theirs[field]) || '—'}` }),
        el('div', { class: 'actions' }, keepMine, takeTheirs),
      ], 'conflict');
      const note = $('.cell-note', cell);
      note.addEventListener('click', async (event) => {
        const choice = event.target.closest('button[data-keep]');
        if (!choice) return;
        event.stopPropagation();
        message(cell, null);
        if (choice.dataset.keep === 'theirs') {
          editing = null;
          cell.classList.remove('editing');
          render(row, theirs);
          setActive(cell, true);
        } else {
          row.dataset.version = theirs.version;
          const stored = gameOf(row);
          stored.version = theirs.version;
          row.dataset.game = JSON.stringify(Object.assign({}, theirs, { [field]: stored[field] }));
          if (await commit()) announce('Saved your value over the other change.');
        }
      });
      keepMine.focus();
    }

    function announce(text) {
      const live = $('#grid-status') || (() => {
        const node = el('p', { id: 'grid-status', class: 'visually-hidden', role: 'status' });
        results.after(node);
        return node;
      })();
      live.textContent = text;
    }

    function move(cell, dRow, dCol) {
      const row = cell.closest('tr');
      const all = rows();
      let r = all.indexOf(row);
      let c = cellsOf(row).indexOf(cell);
      if (dCol) {
        c += dCol;
        const width = cellsOf(row).length;
        if (c < 0 && r > 0) { r -= 1; c = cellsOf(all[r]).length - 1; }
        if (c >= width && r < all.length - 1) { r += 1; c = 0; }
      }
      r = Math.max(0, Math.min(all.length - 1, r + dRow));
      const target = cellsOf(all[r]);
      const next = target[Math.max(0, Math.min(target.length - 1, c))];
      if (next === cell && dCol) return false;
      setActive(next, true);
      return true;
    }

    results.addEventListener('keydown', async (event) => {
      const g = grid();
      if (!g || !g.contains(event.target)) return;
      if (editing) {
        const { input, chips, kind } = editing;
        if (event.key === 'Escape') { event.preventDefault(); message(editing.cell, null); stopEdit(true); return; }
        if (event.key === 'Enter') {
          event.preventDefault();
          if (kind === 'list' && input.value.trim()) {
            chips.append(chip(input.value.trim()));
            input.value = '';
            return;
          }
          await commit();
          return;
        }
        if (event.key === 'Backspace' && kind === 'list' && input.value === '') {
          const last = $$('.chip', chips).pop();
          if (last) { event.preventDefault(); last.remove(); }
          return;
        }
        if (event.key === 'Tab') {
          event.preventDefault();
          const cell = editing.cell;
          if (await commit()) move(cell, 0, event.shiftKey ? -1 : 1);
        }
        return;
      }
      const cell = event.target.closest('td, th');
      if (!cell || !cellsOf(cell.closest('tr')).includes(cell)) return;
      const keys = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
      if (keys[event.key]) { event.preventDefault(); move(cell, ...keys[event.key]); return; }
      if (event.key === 'Tab') {
        if (move(cell, 0, event.shiftKey ? -1 : 1)) event.preventDefault();
        return;
      }
      if (event.key === 'Enter' || event.key === 'F2') {
        event.preventDefault();
        if (cell.classList.contains('select')) { toggle(cell.closest('tr'), event.shiftKey); return; }
        startEdit(cell);
        return;
      }
      if (event.key === ' ' && cell.classList.contains('select')) { event.preventDefault(); toggle(cell.closest('tr'), event.shiftKey); return; }
      if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey && cell.dataset.kind && cell.dataset.kind !== 'list') {
        event.preventDefault();
        startEdit(cell, event.key);
      }
    });

    results.addEventListener('click', (event) => {
      const g = grid();
      if (!g || !g.contains(event.target)) return;
      const remove = event.target.closest('.chip-remove');
      if (remove) { remove.closest('.chip').remove(); if (editing) editing.input.focus(); return; }
      if (event.target.closest('a, .cell-note, input')) {
        const box = event.target.closest('input[data-select]');
        if (box) { event.preventDefault(); toggle(box.closest('tr'), event.shiftKey); }
        const all = event.target.closest('input[data-select-all]');
        if (all) selectAll(all.checked);
        return;
      }
      const cell = event.target.closest('td, th');
      if (!cell || !cell.dataset.field) return;
      if (editing && editing.cell === cell) return;
      if (editing) { commit(); return; }
      setActive(cell, true);
      startEdit(cell);
    });

    // ------------------------------------------------------------ selection and bulk edits
    const selected = () => rows().filter((r) => r.dataset.id && $('input[data-select]', r)?.checked);

    function toggle(row, range) {
      const box = $('input[data-select]', row);
      if (!box) return;
      matching = null;
      const all = rows();
      if (range && anchor && all.includes(anchor)) {
        const [from, to] = [all.indexOf(anchor), all.indexOf(row)].sort((a, b) => a - b);
        const value = $('input[data-select]', anchor).checked;
        for (const r of all.slice(from, to + 1)) { const b = $('input[data-select]', r); if (b) b.checked = value; }
      } else {
        box.checked = !box.checked;
        anchor = row;
      }
      updateBulkBar();
    }

    function selectAll(value) {
      for (const r of rows()) { const b = $('input[data-select]', r); if (b) b.checked = value; }
      matching = null;
      updateBulkBar();
    }

    /** The catalog's filter as the URL holds it, without sort, page size, cursor or notices. */
    function currentFilter() {
      const params = new URLSearchParams(location.search);
      for (const name of ['sort', 'limit', 'cursor', 'deleted']) params.delete(name);
      return params.toString();
    }

    /** Runs a filter job (POST /games/batch/filter) to its end, step by step. */
    async function runJob(change, dryRun, progress) {
      const totals = { processed: 0, changed: 0, unchanged: 0, failed: 0, failures: [] };
      await runSteps('/games/batch/filter', (cursor) => ({ filter: currentFilter(), change, cursor, dry_run: dryRun }), (step) => {
        for (const key of ['processed', 'changed', 'unchanged', 'failed']) totals[key] += step[key];
        totals.failures.push(...step.failures.slice(0, Math.max(0, 20 - totals.failures.length)));
        progress(totals);
      }, (wait) => progress(totals, `waiting ${wait} s for the write limit`));
      return totals;
    }

    async function selectMatching() {
      const status = $('#bulk-status');
      setStatus(status, 'Counting the games that match…');
      try {
        const counted = await runJob({ op: 'delete' }, true, (t) => setStatus(status, `Counting the games that match… ${t.processed}`));
        matching = { count: counted.processed };
        const bar = $('#bulk-bar', results);
        bar.dataset.count = '';
        updateBulkBar();
      } catch (error) {
        setStatus(status, `The games could not be counted: ${error.message}`, 'error');
      }
    }

    function updateBulkBar() {
      const bar = $('#bulk-bar', results);
      if (!bar) return;
      const count = selected().length;
      const undo = undoable();
      if (!count && !undo) { bar.hidden = true; return; }
      if (bar.dataset.count === String(count) && !bar.hidden && bar.dataset.undo === String(Boolean(undo))) return;
      bar.dataset.count = matching ? `all:${matching.count}` : String(count);
      bar.dataset.undo = String(Boolean(undo));
      bar.hidden = false;
      bar.replaceChildren();
      const more = Boolean($('.pager a[rel="next"]', results));
      const everyRow = count > 0 && count === rows().filter((r) => r.dataset.id).length;
      if (count) {
        const action = el('select', { id: 'bulk-action', 'aria-label': 'What to do' },
          el('option', { value: 'add' }, 'Add'), el('option', { value: 'remove' }, 'Remove'),
          el('option', { value: 'set' }, 'Set'), el('option', { value: 'delete' }, 'Delete'));
        const field = el('select', { id: 'bulk-field', 'aria-label': 'Which field' });
        const value = el('input', { id: 'bulk-value', type: 'text', 'aria-label': 'Value', autocomplete: 'off' });
        const fields = () => {
          const list = action.value === 'set'
            ? [['developer', 'developer'], ['release_date', 'release date'], ['rating', 'rating'], ['title', 'title']]
            : [['platforms', 'platform'], ['genres', 'genre'], ['tags', 'tag']];
          field.replaceChildren(...list.map(([v, t]) => el('option', { value: v }, t)));
          field.hidden = value.hidden = action.value === 'delete';
          loadSuggestions().then(() => value.setAttribute('list', datalistFor(field.value)));
        };
        action.addEventListener('change', fields);
        field.addEventListener('change', () => value.setAttribute('list', datalistFor(field.value)));
        fields();
        const n = matching ? matching.count : count;
        const apply = el('button', { type: 'button', id: 'bulk-apply' }, `Apply to ${n} game${n === 1 ? '' : 's'}…`);
        apply.addEventListener('click', () => confirmBulk(action.value, field.value, value.value.trim()));
        const what = matching ? `All ${n} games matching this filter selected` : `${count} selected`;
        bar.append(el('strong', { text: what }), action, field, value, apply);
        if (everyRow && more && !matching) {
          const all = el('button', { type: 'button', class: 'link', id: 'bulk-all' }, 'Select all games matching this filter');
          all.addEventListener('click', selectMatching);
          bar.append(all);
        }
      }
      if (undo) {
        const button = el('button', { type: 'button', class: 'secondary', id: 'bulk-undo' }, `Undo: ${undo.label}`);
        button.addEventListener('click', undoBulk);
        bar.append(button);
      }
      bar.append(el('p', { class: 'status', role: 'status', id: 'bulk-status' }));
    }

    function confirmBulk(action, field, value) {
      const targets = selected();
      const status = $('#bulk-status');
      if (action !== 'delete' && !value && action !== 'set') { setStatus(status, 'Type the value first.', 'error'); return; }
      const what = { add: `Add ${field.replace(/s$/, '')} “${value}” to`, remove: `Remove ${field.replace(/s$/, '')} “${value}” from`, set: `Set ${field} to “${value || '(empty)'}” on`, delete: 'Delete' }[action];
      const n = matching ? matching.count : targets.length;
      const label = `${what} ${n} game${n === 1 ? '' : 's'}`;
      const dialog = el('dialog', { id: 'bulk-dialog', 'aria-labelledby': 'bulk-heading' },
        el('form', { method: 'dialog' },
          el('h2', { id: 'bulk-heading', text: `${label}?` }),
          el('p', { text: 'Each game is changed only if nobody changed it since this page was loaded.' }),
          el('div', { class: 'actions' },
            el('button', { value: 'cancel', class: 'secondary' }, 'Cancel'),
            el('button', { value: 'apply', class: action === 'delete' ? 'danger' : '' }, action === 'delete' ? 'Delete' : 'Apply'))));
      document.body.append(dialog);
      dialog.addEventListener('close', async () => {
        dialog.remove();
        if (dialog.returnValue === 'apply' && matching) await applyMatching(action, field, value, label);
        else if (dialog.returnValue === 'apply') await applyBulk(action, field, value, targets, label);
        else $('#bulk-apply')?.focus();
      });
      dialog.showModal();
    }

    function patchFor(action, field, value, game) {
      const key = (s) => s.toLowerCase();
      if (action === 'set') return { [field]: value === '' ? null : field === 'rating' && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value };
      const list = game[field] || [];
      if (action === 'add') return list.some((v) => key(v) === key(value)) ? null : { [field]: [...list, value] };
      const kept = list.filter((v) => key(v) !== key(value));
      return kept.length === list.length ? null : { [field]: kept.length ? kept : null };
    }

    async function batch(operations) {
      const response = await api('POST', '/games/batch', { body: JSON.stringify({ operations }), headers: { 'Content-Type': 'application/json' } });
      if (!response.ok) throw new Error((await problem(response)).detail);
      return (await response.json()).results;
    }

    async function applyBulk(action, field, value, targets, label) {
      const status = $('#bulk-status');
      const planned = [];
      for (const row of targets) {
        const game = gameOf(row);
        if (action === 'delete') planned.push({ row, before: game, op: { op: 'delete', id: game.id, if_match: `"${game.version}"` } });
        else {
          const patch = patchFor(action, field, value, game);
          if (patch) planned.push({ row, before: game, op: { op: 'patch', id: game.id, if_match: `"${game.version}"`, patch } });
        }
      }
      if (!planned.length) { setStatus(status, 'Nothing to change: every selected game already is that way.', 'ok'); return; }
      setStatus(status, `Applying to ${planned.length} games…`);
      let outcome;
      try { outcome = await batch(planned.map((p) => p.op)); } catch (error) {
        setStatus(status, `Nothing was changed: ${error.message}`, 'error');
        return;
      }
      const done = [];
      const failed = [];
      outcome.forEach((result, i) => {
        const { row, before } = planned[i];
        if (result.status === 200) { render(row, result.game); done.push({ before, after: result.game.version }); }
        else if (result.status === 204) { row.remove(); done.push({ before, after: null }); }
        else failed.push(`${before.title}: ${result.status === 412 ? 'changed by someone else meanwhile; left as it is' : (result.problem && result.problem.detail) || result.status}`);
      });
      const undo = { label, done };
      sessionStorage.setItem(GRID_UNDO, JSON.stringify(undo));
      selectAll(false);
      const bar = $('#bulk-bar', results);
      bar.dataset.count = '';
      updateBulkBar();
      setStatus($('#bulk-status'), `${label}: ${done.length} changed${failed.length ? `; ${failed.length} not: ${failed.join('; ')}` : '.'}`, failed.length ? 'error' : 'ok');
    }

    /** A change to every game of the filter: a server-side job, run in steps, with progress. */
    async function applyMatching(action, field, value, label) {
      const status = $('#bulk-status');
      const change = action === 'delete' ? { op: 'delete' }
        : action === 'set' ? { op: 'set', field, value: value === '' ? null : field === 'rating' && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value }
          : { op: action, field, value };
      const n = matching.count;
      try {
        const totals = await runJob(change, false, (t, note) => setStatus(status, `${label}: ${t.processed} of ${n} done${note ? ` (${note})` : ''}…`));
        const failures = totals.failures.map((f) => `${f.id}: ${f.status === 412 ? 'changed by someone else meanwhile; left as it is' : f.problem.detail}`);
        matching = null;
        selectAll(false);
        barStatus(`${label}: ${totals.changed} changed, ${totals.unchanged} already so${totals.failed ? `; ${totals.failed} not: ${failures.join('; ')}` : '.'} Reload to see every page.`, totals.failed ? 'error' : 'ok');
      } catch (error) {
        setStatus(status, `The change stopped: ${error.message}. What was done stands; run it again to finish.`, 'error');
      }
    }

    /** Says how a bulk edit went, in the bar, shown even when nothing is selected any more. */
    function barStatus(text, kind) {
      const bar = $('#bulk-bar', results);
      if (bar.hidden) { bar.hidden = false; bar.replaceChildren(el('p', { class: 'status', role: 'status', id: 'bulk-status' })); }
      setStatus($('#bulk-status', bar), text, kind);
    }

    function undoable() {
      try { return JSON.parse(sessionStorage.getItem(GRID_UNDO) || 'null'); } catch (_) { return null; }
    }

    async function undoBulk() {
      const undo = undoable();
      if (!undo) return;
      const server = ['id', 'version', 'created_at', 'updated_at'];
      const content = (game) => Object.fromEntries(Object.entries(game).filter(([k]) => !server.includes(k) || k === 'id'));
      const operations = undo.done.map(({ before, after }) => (after == null
        ? { op: 'create', game: content(before) }
        : { op: 'replace', id: before.id, if_match: `"${after}"`, game: content(before) }));
      let outcome;
      try { outcome = await batch(operations); } catch (error) {
        setStatus($('#bulk-status'), `Nothing was undone: ${error.message}`, 'error');
        return;
      }
      const kept = [];
      let restored = 0;
      outcome.forEach((result, i) => {
        const { before } = undo.done[i];
        if (result.status === 200 || result.status === 201) {
          restored += 1;
          const row = rows().find((r) => r.dataset.id === before.id);
          if (row) render(row, result.game);
          else $('tr[data-new]', results)?.before(newRow(result.game));
        } else kept.push(`${before.title} (${result.status === 412 ? 'changed since' : result.status === 409 ? 'created again since' : result.status})`);
      });
      sessionStorage.removeItem(GRID_UNDO);
      const bar = $('#bulk-bar', results);
      bar.dataset.count = '';
      updateBulkBar();
      prepare();
      const text = `Undone: ${restored} restored${kept.length ? `; left as they are: ${kept.join(', ')}` : '.'}`;
      announce(text);
      barStatus(text, kept.length ? 'error' : 'ok');
    }

    results.addEventListener('results:loaded', prepare);
    prepare();
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

    // History: one click brings a version's content back as a new version.
    const restoreStatus = $('#restore-status');
    for (const button of game.querySelectorAll('button[data-restore]')) {
      button.addEventListener('click', async () => {
        const version = Number(button.dataset.restore);
        button.disabled = true;
        setStatus(restoreStatus, `Restoring version ${version}…`);
        try {
          const response = await api('POST', `/games/${encodeURIComponent(id)}/restore`, {
            body: JSON.stringify({ version }),
            headers: { 'Content-Type': 'application/json', 'If-Match': `"${game.dataset.version}"` },
          });
          if (response.ok) {
            const restored = await response.json();
            location.assign(`/ui/games/${encodeURIComponent(id)}?restored=${version}&v=${restored.version}#history`);
            return;
          }
          const p = await problem(response);
          setStatus(restoreStatus, response.status === 412
            ? 'Someone else changed this game since you opened it, so nothing was restored. Reload the page to see their version.'
            : p.detail, 'error');
        } catch (error) {
          setStatus(restoreStatus, `The server could not be reached (${error.message}); nothing was restored.`, 'error');
        }
        button.disabled = false;
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
          // The page's `small` size with its 2x, named by the new cover's version: the folder in
          // its key, covers/{id}/{version}/original.{ext} (as the server renders it).
          const version = saved.cover_image.split('/')[2];
          const url = (dpr) => `/games/${encodeURIComponent(id)}/cover?size=small${dpr === 2 ? '&dpr=2' : ''}&v=${version}`;
          const img = el('img', {
            class: 'cover-image', src: url(1), srcset: `${url(1)} 1x, ${url(2)} 2x`, width: '264', height: '374',
            alt: `Cover of ${game.dataset.title}`, decoding: 'async', 'data-size': 'small',
          });
          $('#cover-image').replaceWith(el('div', { id: 'cover-image' }, img));
          setStatus(status, 'Cover uploaded.', 'ok');
        } catch (error) {
          setStatus(status, `The server could not be reached (${error.message}).`, 'error');
        } finally {
          button.disabled = false;
        }
      });
    }
  }

  // ---------------------------------------------------------------- revert an ingest
  /** The ingest page: a preview of its revert (a dry run), then the revert, step by step. */
  function enhanceRevert() {
    const section = $('#revert');
    if (!section) return;
    const id = section.dataset.id;
    const previewButton = $('button[data-revert-preview]', section);
    const runButton = $('button[data-revert-run]', section);
    const status = $('#revert-status');
    const preview = $('#revert-preview');

    async function run(dryRun) {
      const totals = { deleted: 0, restored: 0, recreated: 0, already_reverted: 0, conflicted: 0, conflicts: [], revert: null };
      await runSteps(`/ingests/${encodeURIComponent(id)}/revert`, (cursor) => ({ cursor, dry_run: dryRun }), (step) => {
        for (const key of ['deleted', 'restored', 'recreated', 'already_reverted', 'conflicted']) totals[key] += step[key];
        totals.conflicts.push(...step.conflicts.slice(0, Math.max(0, 50 - totals.conflicts.length)));
        totals.revert = step.revert;
        setStatus(status, `${dryRun ? 'Looking' : 'Reverting'}… ${totals.deleted + totals.restored + totals.recreated} games so far.`);
      }, (wait) => setStatus(status, `Waiting ${wait} s for the write limit…`));
      return totals;
    }

    function show(totals, dryRun) {
      const verb = dryRun ? 'would be' : 'were';
      const rows = [
        ['Deleted (the upload created them)', totals.deleted],
        ['Put back to their content before', totals.restored],
        ['Brought back', totals.recreated],
        ['Left as they are: changed since (conflicts)', totals.conflicted],
      ];
      const list = el('dl', { class: 'facts counts', 'data-revert-totals': '' });
      for (const [label, value] of rows) list.append(el('dt', { text: `${label}` }), el('dd', { text: String(value) }));
      const children = [el('p', { text: `Games that ${verb} changed by the revert:` }), list];
      if (totals.conflicts.length) {
        const table = el('table', { class: 'rejects' },
          el('thead', {}, el('tr', {}, el('th', { text: 'Game' }), el('th', { text: 'Now' }), el('th', { text: 'Why it is left' }))));
        const tbody = el('tbody');
        for (const c of totals.conflicts) {
          const now = `version ${c.now}${c.deleted ? ' (deleted)' : ''}${c.changed_by ? ` by ${c.changed_by}` : ''}`;
          tbody.append(el('tr', {}, el('td', {}, el('a', { href: `/ui/games/${encodeURIComponent(c.id)}`, text: c.id })), el('td', { text: now }), el('td', { text: c.reason })));
        }
        table.append(tbody);
        children.push(table);
      }
      preview.replaceChildren(...children);
    }

    previewButton.addEventListener('click', async () => {
      previewButton.disabled = true;
      try {
        const totals = await run(true);
        show(totals, true);
        setStatus(status, 'Preview ready: nothing was changed yet.');
        runButton.hidden = false;
      } catch (error) {
        setStatus(status, `The preview failed: ${error.message}`, 'error');
      } finally {
        previewButton.disabled = false;
      }
    });
    runButton.addEventListener('click', async () => {
      runButton.disabled = true;
      previewButton.disabled = true;
      try {
        const totals = await run(false);
        show(totals, false);
        runButton.hidden = true;
        previewButton.hidden = true;
        status.replaceChildren('Reverted: see ', el('a', { href: `/ui/ingests/${encodeURIComponent(totals.revert)}`, text: `the revert's entry ${totals.revert}` }), '.');
        status.className = 'ok';
      } catch (error) {
        setStatus(status, `The revert stopped: ${error.message} What was reverted stays so; revert again to go on.`, 'error');
        runButton.disabled = false;
        previewButton.disabled = false;
      }
    });
  }

  // ---------------------------------------------------------------- uploads

  function uploadName(name) {
    let clean = name.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
    if (clean.length > 128) clean = clean.slice(clean.length - 128).replace(/^[^A-Za-z0-9]+/, '');
    return clean || 'upload.ndjson';
  }

  function contentType(name) {
    if (/\.gz$/i.test(name)) return 'application/gzip';
    if (/\.csv$/i.test(name)) return 'text/csv';
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

    // ------------------------------------------------------------ import with a preview
    // A CSV file gets a mapping step (guessed from its header as the server guesses), then a
    // dry run (POST /uploads?dry_run=true) shows what it would change; "Import" sends it with
    // its mapping (POST /uploads?map=…), which the ledger keeps. Other files get the same
    // preview when "Preview first" is ticked, then go straight to the bucket as always.
    const step = $('#import-step');
    const previewFirst = $('#preview-first');
    const FIELDS = ['id', 'title', 'platforms', 'genres', 'release_date', 'developer', 'publisher', 'rating', 'price', 'currency', 'description', 'tags', 'cover_image'];
    const SERVER_FIELDS = ['created_at', 'updated_at', 'version'];
    const normal = (header) => header.trim().toLowerCase().replace(/[\s-]+/g, '_');

    /** The header row of a CSV file: its cells and delimiter, read from its first 64 KiB. */
    async function csvHeader(file) {
      const text = await file.slice(0, 65536).text();
      const body = text.replace(/^\uFEFF/, '');
      let quoted = false;
      let end = body.length;
      for (let i = 0; i < body.length; i += 1) {
        if (body[i] === '"') quoted = !quoted;
        else if (!quoted && (body[i] === '\n' || body[i] === '\r')) { end = i; break; }
      }
      const line = body.slice(0, end);
      const count = (c) => { let n = 0; let q = false; for (const ch of line) { if (ch === '"') q = !q; else if (!q && ch === c) n += 1; } return n; };
      const delimiter = count(';') > count(',') ? ';' : ',';
      const cells = [];
      let cell = '';
      let q = false;
      for (let i = 0; i < line.length; i += 1) {
        const ch = line[i];
        if (ch === '"') { if (q && line[i + 1] === '"') { cell += '"'; i += 1; } else q = !q; }
        else if (ch === delimiter && !q) { cells.push(cell); cell = ''; }
        else cell += ch;
      }
      cells.push(cell);
      return cells.map((c) => c.trim());
    }

    function guess(header) {
      const name = normal(header);
      if (!header.trim() || SERVER_FIELDS.includes(name)) return '';
      return FIELDS.includes(name) ? name : `extra.${header.trim()}`;
    }

    function mappingStep(file, headers) {
      return new Promise((resolve) => {
        const rows = headers.map((header, i) => {
          const select = el('select', { id: `map-${i}`, 'data-header': header });
          const options = [['', 'leave out'], ...FIELDS.map((f) => [f, f])];
          if (header && !FIELDS.includes(normal(header))) options.push([`extra.${header}`, `extra field “${header}”`]);
          for (const [value, text] of options) select.append(el('option', { value }, text));
          select.value = guess(header);
          return el('tr', {}, el('th', { scope: 'row' }, el('label', { for: `map-${i}`, text: header || `(column ${i + 1})` })), el('td', {}, select));
        });
        const go = el('button', { type: 'button' }, 'Preview the import');
        const cancel = el('button', { type: 'button', class: 'secondary' }, 'Cancel');
        const merge = el('input', { type: 'checkbox', id: 'import-merge', checked: '' });
        step.replaceChildren(
          el('h3', { text: `Map the columns of ${file.name}` }),
          el('p', { text: 'Each column goes to a field of the game, to an extra field of its own name, or nowhere. The guesses come from the column names.' }),
          el('div', { class: 'table-scroll' }, el('table', { class: 'mapping' },
            el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Column' }), el('th', { scope: 'col', text: 'Goes to' }))),
            el('tbody', {}, ...rows))),
          el('div', { class: 'field check' }, merge,
            el('label', { for: 'import-merge', text: 'Games already in the catalog keep the fields this file does not have (merge); untick to replace them whole' })),
          el('div', { class: 'actions' }, go, cancel));
        step.hidden = false;
        $('select', step).focus();
        go.addEventListener('click', () => {
          const pairs = $$('select[data-header]', step).map((s) => `${s.dataset.header}=${s.value}`);
          resolve({ map: pairs.join(','), merge: merge.checked });
        });
        cancel.addEventListener('click', () => resolve(null));
      });
    }

    function previewStep(file, preview) {
      return new Promise((resolve) => {
        const p = preview;
        const changes = el('tbody');
        for (const change of p.changes) {
          for (const field of change.fields) {
            const show = (v) => (v == null ? '—' : typeof v === 'string' ? v : JSON.stringify(v));
            changes.append(el('tr', {}, el('td', { text: change.id }), el('td', { text: field.field }),
              el('td', { text: show(field.from) }), el('td', { text: show(field.to) })));
          }
        }
        const rejects = el('tbody');
        for (const reject of p.rejects) {
          for (const error of reject.errors) {
            const column = error.column ? `${error.column.number} (${error.column.header})` : '';
            rejects.append(el('tr', {}, el('td', { text: position(reject) }), el('td', { text: column }),
              el('td', { text: error.field == null ? '(record)' : error.field }), el('td', { text: error.reason })));
          }
        }
        const landing = p.new + p.changed + p.unchanged;
        const go = el('button', { type: 'button' }, `Import ${landing} record${landing === 1 ? '' : 's'}`);
        const cancel = el('button', { type: 'button', class: 'secondary' }, 'Cancel');
        const table = (label, head, body) => el('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': label },
          el('table', {}, el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col', text: h })))), body));
        step.replaceChildren(...[
          el('h3', { text: `Preview of ${file.name}: nothing is written yet` }),
          el('dl', { class: 'facts counts', id: 'preview-counts' },
            ...[['New', p.new], ['Changed', p.changed], ['Unchanged', p.unchanged], ['Rejected', p.rejected]]
              .flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })])),
          p.error ? el('p', { class: 'notice error', text: p.error }) : null,
          p.changes.length ? el('h4', { text: p.changed > p.changes.length ? `The first ${p.changes.length} of ${p.changed} changed games` : 'Changed games' }) : null,
          p.changes.length ? table('Changes', ['Game', 'Field', 'Now', 'After the import'], changes) : null,
          p.rejects.length ? el('h4', { text: 'Records that would be rejected' }) : null,
          p.rejects.length ? table('Rejects', ['Position', 'Column', 'Field', 'Reason'], rejects) : null,
          el('div', { class: 'actions' }, go, cancel)].filter(Boolean));
        step.hidden = false;
        go.focus();
        go.addEventListener('click', () => resolve(true));
        cancel.addEventListener('click', () => resolve(false));
      });
    }

    async function dryRun(file, reading) {
      const query = new URLSearchParams({ filename: uploadName(file.name), dry_run: 'true' });
      if (reading) { query.set('map', reading.map); query.set('merge', String(reading.merge)); }
      const response = await api('POST', `/uploads?${query}`, { body: file, headers: { 'Content-Type': contentType(file.name) } });
      if (!response.ok) throw new Error((await problem(response)).detail);
      return (await response.json()).preview;
    }

    /** Sends a mapped file through the API, which keeps the mapping with its ledger entry. */
    async function sendMapped(file, reading) {
      const query = new URLSearchParams({ filename: uploadName(file.name), map: reading.map, merge: String(reading.merge) });
      const response = await api('POST', `/uploads?${query}`, { body: file, headers: { 'Content-Type': contentType(file.name) } });
      if (!response.ok) throw new Error((await problem(response)).detail);
      const body = await response.json();
      return { ingest: `/ingests/${body.ingest_id}` };
    }

    async function importWithPreview(file) {
      if (busy) return;
      busy = true;
      result.replaceChildren();
      setStatus(status, '');
      try {
        const csv = /\.csv(\.gz)?$/i.test(file.name);
        let reading = null;
        if (csv && !/\.gz$/i.test(file.name)) {
          reading = await mappingStep(file, await csvHeader(file));
          if (reading === null) { step.hidden = true; setStatus(status, 'Import cancelled; nothing was sent.'); return; }
        }
        setStatus(status, 'Reading the file for a preview…');
        const preview = await dryRun(file, reading);
        setStatus(status, '');
        if (!(await previewStep(file, preview))) { step.hidden = true; setStatus(status, 'Import cancelled; nothing was written.'); return; }
        step.hidden = true;
        busy = false;
        if (reading === null) { await upload(file); return; }
        busy = true;
        setStatus(status, 'Uploaded. Ingesting…');
        const record = await follow(await sendMapped(file, reading));
        setStatus(status, 'Done.', 'ok');
        await showResult(record);
        await refreshHistory();
      } catch (error) {
        setStatus(status, `The import failed: ${error.message}.`, 'error');
      } finally {
        busy = false;
        input.value = '';
      }
    }

    function chosen(file) {
      if (!file) return;
      if (/\.csv(\.gz)?$/i.test(file.name) || (previewFirst && previewFirst.checked)) importWithPreview(file);
      else upload(file);
    }

    input.addEventListener('change', () => chosen(input.files[0]));
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
      if (file) chosen(file);
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
    enhanceGrid();
    enhanceGameForm();
    enhanceGamePage();
    enhanceUploads();
    enhanceRevert();
    enhanceIngestPage();
  });
})();
