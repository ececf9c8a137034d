// parley console: a client of the agent API (/agent/v1) and its live stream. Plain JavaScript,
// no build step, no dependencies. Every change goes through the API with the login's CSRF token;
// user-provided text is only ever put in the page as text (textContent), never as HTML.
(() => {
  'use strict';

  const app = document.getElementById('app');
  const me = { id: app.dataset.agentId, name: app.dataset.agentName, email: app.dataset.agentEmail, avatar: app.dataset.agentAvatar };
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const API = '/agent/v1';
  const LIST_LIMIT = 1000;

  const state = {
    view: 'queue',
    convs: new Map(),        // open conversations by ID
    more: false,             // the server has more open conversations than were loaded
    integrations: [],
    integration: '',
    search: '',
    openId: null,
    open: null,              // the open conversation, with its context
    messages: new Map(),     // messages of the open conversation's session, by ID
    typing: null,            // {agent, until} of another agent typing in the open conversation
    loading: false,
    buffered: [],            // stream events that arrived while loading
    drafts: new Map(),       // unsent text by conversation
    attachments: [],         // attachments waiting to be sent with the next message
  };

  // ---- Small helpers ----------------------------------------------------------------------

  // h builds an element: h('div.a.b', {title: 'x', onclick: fn}, child, 'text', ...).
  function h(tag, attrs, ...children) {
    const [name, ...classes] = tag.split('.');
    const el = document.createElement(name || 'div');
    if (classes.length) el.className = classes.join(' ');
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k in el && k !== 'list' && k !== 'type') el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const $ = (sel) => document.querySelector(sel);

  // icon returns a small inline SVG (stroke icons, 24×24 grid).
  const ICONS = {
    link: 'M9 17H7A5 5 0 0 1 7 7h2M15 7h2a5 5 0 1 1 0 10h-2M8 12h8',
    clip: 'M20 11.5l-8 8a5 5 0 0 1-7-7l8.5-8.5a3.3 3.3 0 0 1 4.7 4.7l-8.5 8.5a1.7 1.7 0 0 1-2.4-2.4L15 7.2',
    send: 'M5 12h14M13 6l6 6-6 6',
    check: 'M5 12l5 5 9-10',
    panel: 'M4 5h16v14H4zM15 5v14',
    clock: 'M12 7v5l3 2M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z',
    transfer: 'M4 8h13l-3-3M20 16H7l3 3',
    leave: 'M15 12H4M8 8l-4 4 4 4M12 5h7v14h-7',
    x: 'M6 6l12 12M18 6L6 18',
  };
  function icon(name) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', 'icon');
    svg.setAttribute('aria-hidden', 'true');
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('d', ICONS[name]);
    svg.append(path);
    return svg;
  }

  function webURL(u) {
    try {
      const url = new URL(u, location.href);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch { return null; }
  }

  function hash(s) {
    let n = 0;
    for (const ch of s || '') n = (n * 31 + ch.charCodeAt(0)) | 0;
    return Math.abs(n);
  }

  function initials(name) {
    const parts = (name || '?').trim().split(/\s+/).filter(Boolean);
    const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
    return s.toUpperCase();
  }

  function avatar(name, url, size) {
    const el = h('span.avatar' + (size ? '.avatar-' + size : '') + '.c' + (hash(name) % 8), { 'aria-hidden': 'true' });
    const src = url && webURL(url);
    if (src) el.append(h('img', { src, alt: '', referrerPolicy: 'no-referrer', onerror: () => { el.textContent = initials(name); } }));
    else el.textContent = initials(name);
    return el;
  }

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'short', day: 'numeric' });
  const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  function ago(ms) {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 45) return 'now';
    if (s < 3600) return Math.round(s / 60) + 'm';
    if (s < 86400) return Math.round(s / 3600) + 'h';
    if (s < 7 * 86400) return Math.round(s / 86400) + 'd';
    return dateFmt.format(ms);
  }

  function waited(ms) {
    const a = ago(ms);
    return a === 'now' ? 'just arrived' : 'waiting ' + a;
  }

  function dayLabel(ms) {
    const d = new Date(ms), today = new Date();
    const yesterday = new Date(); yesterday.setDate(today.getDate() - 1);
    if (d.toDateString() === today.toDateString()) return 'Today';
    if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
    return dayFmt.format(d);
  }

  function toast(text, kind) {
    const el = h('div.toast' + (kind ? '.' + kind : ''), { onclick: () => el.remove() }, text);
    $('#toasts').append(el);
    setTimeout(() => el.remove(), kind === 'error' ? 6000 : 3000);
  }

  // ---- API --------------------------------------------------------------------------------

  async function api(method, path, body) {
    const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (method !== 'GET') opts.headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(API + path, opts);
    if (res.status === 401) {
      location.href = '/console/login';
      throw new Error('Your session has ended. Please sign in again.');
    }
    if (res.status === 204) return null;
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error_message || 'Request failed (' + res.status + ')');
    return data;
  }

  // ---- What the agent sees ----------------------------------------------------------------

  const isMine = (c) => c && c.handled_by === 'agent' && c.assignee && c.assignee.agent_id === me.id;
  const isOpen = (c) => c && c.status === 'open' && c.session_status === 'active';

  function holder(c) {
    switch (c.handled_by) {
      case 'queue': return { cls: 'queue', text: 'Queue' };
      case 'brain': return { cls: 'brain', text: 'Brain' };
      case 'external': return { cls: 'external', text: 'External' };
      case 'agent': return isMine(c) ? { cls: 'mine', text: 'You' } : { cls: 'agent', text: c.assignee ? c.assignee.agent_name : 'Agent' };
    }
    return { cls: 'agent', text: c.handled_by };
  }

  function chip(c) {
    if (c.status !== 'open') return h('span.chip.chip-resolved', null, 'Resolved');
    if (c.session_status !== 'active') return h('span.chip.chip-ended', null, 'Session ended');
    const w = holder(c);
    return h('span.chip.chip-' + w.cls, null, w.text);
  }

  function activity(c) {
    return Math.max(c.updated_at, c.last_message ? c.last_message.created_at : 0);
  }

  function inView(c, view) {
    if (state.integration && c.integration_id !== state.integration) return false;
    if (view === 'queue') return c.handled_by === 'queue';
    if (view === 'mine') return isMine(c);
    return true;
  }

  function visible() {
    const q = state.search.toLowerCase();
    const list = [...state.convs.values()].filter((c) => inView(c, state.view) && (!q ||
      c.user.name.toLowerCase().includes(q) || (c.user.email || '').toLowerCase().includes(q) ||
      (c.last_message && c.last_message.preview.toLowerCase().includes(q)) || c.integration_name.toLowerCase().includes(q)));
    // The queue is first come, first served; the others show the latest activity first.
    if (state.view === 'queue') list.sort((a, b) => a.updated_at - b.updated_at);
    else list.sort((a, b) => activity(b) - activity(a));
    return list;
  }

  // ---- Rendering (batched: at most once a frame) ------------------------------------------

  let dirty = { list: false, conv: false, messages: false, context: false };
  let frame = 0;
  function schedule(parts) {
    Object.assign(dirty, parts);
    if (!frame) frame = requestAnimationFrame(render);
  }

  function render() {
    frame = 0;
    const d = dirty;
    dirty = { list: false, conv: false, messages: false, context: false };
    if (d.list) { renderCounts(); renderList(); }
    if (d.conv) renderHead();
    if (d.messages) renderMessages();
    if (d.context) renderContext();
  }

  function renderCounts() {
    const n = { queue: 0, mine: 0, open: 0 };
    for (const c of state.convs.values()) {
      if (state.integration && c.integration_id !== state.integration) continue;
      n.open++;
      if (c.handled_by === 'queue') n.queue++;
      if (isMine(c)) n.mine++;
    }
    for (const [k, v] of Object.entries(n)) {
      for (const el of document.querySelectorAll(`[data-count="${k}"]`)) {
        el.textContent = state.more && k === 'open' ? LIST_LIMIT + '+' : v;
        el.classList.toggle('hot', k === 'queue' && v > 0);
      }
    }
    document.title = (n.queue ? `(${n.queue}) ` : '') + 'Inbox · parley';
  }

  // who says whose message a preview is, when it is not the user's.
  function who(m) {
    if (m.author === 'brain') return 'Brain: ';
    if (m.author === 'agent' || m.author === 'external') return m.agent && m.agent.agent_id === me.id ? 'You: ' : ((m.agent && m.agent.agent_name) || 'Agent') + ': ';
    return '';
  }

  function renderList() {
    for (const tab of document.querySelectorAll('.tab')) tab.setAttribute('aria-selected', String(tab.dataset.view === state.view));
    const list = visible();
    const ol = $('#list');
    if (!list.length) {
      const msg = { queue: ['The queue is empty', 'Handed-over conversations appear here the moment they arrive.'],
        mine: ['Nothing assigned to you', 'Join a conversation from the queue to start.'],
        open: ['No open conversations', 'Conversations appear here as users write.'] }[state.view];
      ol.replaceChildren(h('li.list-empty', null, h('strong', null, state.search ? 'No matches' : msg[0]), state.search ? 'Try another search.' : msg[1]));
      listItems.clear();
      return;
    }
    const seen = new Set();
    ol.replaceChildren(...list.map((c) => {
      const last = c.last_message;
      const unread = c.unread > 0 && c.handled_by !== 'brain';
      const waiting = c.handled_by === 'queue';
      // An item keeps its element across redraws (only its content is new): a click whose
      // press and release straddle a live update still lands on it.
      let li = listItems.get(c.id);
      if (!li) {
        li = h('li', { dataset: { id: c.id }, tabIndex: 0, role: 'button',
          onclick: () => openConversation(c.id), onkeydown: (e) => { if (e.key === 'Enter') openConversation(c.id); } });
        listItems.set(c.id, li);
      }
      seen.add(c.id);
      li.className = 'item' + (c.id === state.openId ? ' active' : '') + (unread ? ' unread' : '');
      if (c.id === state.openId) li.setAttribute('aria-current', 'true'); else li.removeAttribute('aria-current');
      li.replaceChildren(
        avatar(c.user.name, c.user.avatar),
        h('span.item-name', null, c.user.name),
        h('span.item-time', { title: fullFmt.format(activity(c)) }, ago(activity(c))),
        h('div.item-preview', null, last ? who(last) + last.preview : 'No messages yet'),
        h('div.item-side', null, unread ? h('span.badge', { title: c.unread + ' unread' }, c.unread > 99 ? '99+' : c.unread) : null),
        h('div.item-meta', null, chip(c), h('span.item-channel', null, c.integration_name),
          waiting ? h('span.item-wait', { title: 'Waiting since ' + fullFmt.format(c.updated_at) }, icon('clock'), waited(c.updated_at)) : null));
      return li;
    }));
    for (const id of listItems.keys()) if (!seen.has(id)) listItems.delete(id);
  }

  // The inbox's item elements by conversation ID, reused by renderList.
  const listItems = new Map();

  // The conversation pane is built once per opened conversation: its head and messages are
  // redrawn as they change, the composer stays (with what is being typed).
  let pane = null;

  function buildPane() {
    const ta = h('textarea', { rows: 1, placeholder: 'Write a reply…', 'aria-label': 'Reply',
      oninput: onComposerInput, onkeydown: onComposerKey });
    pane = {
      head: h('header.conv-head'),
      messages: h('div.messages', { role: 'log', 'aria-live': 'polite', onscroll: () => { pane.pinned = nearBottom(); } }),
      typing: h('div.typing'),
      composer: h('div.composer', null,
        h('div.pending'),
        ta,
        h('div.composer-bar', null,
          h('span.composer-hint'),
          h('button.btn.btn-ghost', { type: 'button', title: 'Upload a file or picture', onclick: uploadFiles }, icon('clip'), 'File'),
          h('button.btn.btn-ghost', { type: 'button', title: 'Attach a file or picture by its link', onclick: attachMenu }, icon('link'), 'Link'),
          h('button.btn.btn-primary', { type: 'button', onclick: send, title: 'Send (Enter)' }, 'Send', icon('send')))),
      notice: h('div.notice.hidden'),
      textarea: ta,
      pinned: true,
    };
    $('#conversation').replaceChildren(pane.head, pane.messages, pane.typing, pane.notice, pane.composer);
  }

  function renderHead() {
    const c = state.open;
    if (!c || !pane) return;
    const actions = h('div.actions');
    const open = isOpen(c);
    if (open && !isMine(c)) {
      actions.append(h('button.btn.btn-primary', { onclick: join, title: 'Assign to me (Shift+J)' }, 'Join', h('kbd', null, '⇧J')));
    }
    if (open && isMine(c)) actions.append(h('button.btn.btn-ghost', { onclick: leave, title: 'Back to the queue (Shift+L)' }, icon('leave'), 'Leave'));
    if (open) actions.append(h('button.btn', { onclick: transferMenu, title: 'Give it to another agent (Shift+T)' }, icon('transfer'), 'Transfer'));
    if (open) actions.append(h('button.btn.btn-ok', { onclick: resolve, title: 'Resolve (Shift+E)' }, icon('check'), 'Resolve'));
    actions.append(h('button.icon-btn', { title: 'Show or hide the details', 'aria-label': 'Toggle details',
      onclick: () => app.classList.toggle('no-context') }, icon('panel')));
    const sub = [c.user.email, c.integration_name].filter(Boolean).join(' · ');
    pane.head.replaceChildren(avatar(c.user.name, c.user.avatar),
      h('div.conv-title', null, h('h1', null, h('span', null, c.user.name), chip(c)), h('div.conv-sub', null, sub)),
      actions);

    // What the agent can do at the bottom: write, or why not.
    const hint = pane.composer.querySelector('.composer-hint');
    let notice = null;
    if (!open) notice = [c.status !== 'open' ? 'This conversation is resolved. The user’s next message starts a new one.' : 'The session has ended.'];
    else if (c.handled_by === 'agent' && !isMine(c)) notice = [`${c.assignee ? c.assignee.agent_name : 'Another agent'} has this conversation.`, h('button.btn', { onclick: transferMenu }, 'Transfer')];
    pane.notice.classList.toggle('hidden', !notice);
    pane.composer.classList.toggle('hidden', !!notice);
    if (notice) pane.notice.replaceChildren(h('span', null, notice[0]), notice[1] || '');
    hint.textContent = isMine(c) ? 'Enter to send · Shift+Enter for a new line' :
      c.handled_by === 'brain' ? 'Sending takes the conversation from the brain and joins you' : 'Sending joins you to this conversation';
    pane.textarea.placeholder = 'Reply to ' + c.user.name + '…';
  }

  function nearBottom() {
    const m = pane.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  function renderMessages() {
    if (!pane || !state.open) return;
    const pinned = pane.pinned || nearBottom();
    const msgs = [...state.messages.values()].sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
    const out = [];
    let day = '', conv = '', prev = null;
    for (const m of msgs) {
      const d = dayLabel(m.created_at);
      if (d !== day) { out.push(h('div.day', null, d)); day = d; prev = null; }
      if (conv && m.conversation_id !== conv) { out.push(h('div.divider', null, 'New conversation')); prev = null; }
      conv = m.conversation_id;
      const who = m.author + ':' + (m.agent ? m.agent.agent_id : '');
      const cont = prev && prev.who === who && m.created_at - prev.at < 5 * 60 * 1000;
      out.push(messageEl(m, cont));
      prev = { who, at: m.created_at };
    }
    if (!msgs.length) out.push(h('div.divider', null, 'No messages yet'));
    pane.messages.replaceChildren(...out);
    if (pinned) pane.messages.scrollTop = pane.messages.scrollHeight;
    pane.pinned = pinned;
    renderTyping();
  }

  function messageEl(m, cont) {
    const c = state.open;
    let cls = 'in', name = c.user.name, av = avatar(c.user.name, c.user.avatar, 'sm');
    if (m.author === 'brain') { cls = 'out brain'; name = 'Brain'; av = h('span.avatar.avatar-sm.c5', { 'aria-hidden': 'true' }, 'AI'); }
    if (m.author === 'agent' || m.author === 'external') {
      const a = m.agent || { agent_name: 'Agent' };
      const mine = m.author === 'agent' && a.agent_id === me.id;
      cls = 'out ' + m.author + (m.author === 'agent' && !mine ? ' other' : '');
      name = mine ? 'You' : (a.agent_name || a.agent_id) + (m.author === 'external' ? ' · external agent' : '');
      av = avatar(a.agent_name || a.agent_id, a.agent_avatar, 'sm');
    }
    const body = h('div.msg-body', null, h('div.msg-author', null, name));
    body.append(...content(m));
    const meta = h('div.meta', { title: fullFmt.format(m.created_at) }, timeFmt.format(m.created_at));
    if (m.author === 'agent' || m.author === 'brain') {
      const t = m.read_at ? ['✓✓', 'Read by the user', '.read'] : m.delivered_at ? ['✓✓', 'Delivered to the user', ''] : ['✓', 'Sent', ''];
      meta.append(h('span.ticks' + t[2], { title: t[1], 'aria-label': t[1] }, t[0]));
    }
    body.append(meta);
    return h('div.msg.' + cls.split(' ').join('.') + (cont ? '.cont' : ''), { dataset: { id: m.id, author: m.author } }, av, body);
  }

  // content renders what a message carries: text, the brain's responses, attachments.
  function content(m) {
    const out = [];
    if (m.text) out.push(h('div.bubble', null, linkify(m.text)));
    for (const r of m.responses || []) out.push(...response(r));
    for (const a of m.attachments || []) out.push(attachment(a.type, a.url, a.filename || a.title, a.mime_type));
    if (!out.length) out.push(h('div.bubble', null, h('span.muted', null, '(empty)')));
    return out;
  }

  function response(r) {
    switch (r.type) {
      case 'text': {
        const b = h('div.bubble', null, linkify(r.text || ''));
        if (r.options && r.options.length) b.append(h('div.options', null, r.options.map((o) => h('span.option', null, o.label || o.text))));
        return [b];
      }
      case 'image': case 'video': case 'audio': case 'file':
        return [attachment(r.type, r.url, r.name)];
      case 'carousel':
        return [h('div.card-list', null, (r.cards || []).map((card) => h('div.card', null,
          card.media && webURL(card.media.url) && card.media.type === 'image' ? h('img', { src: webURL(card.media.url), alt: '' }) : null,
          h('div', null, h('strong', null, card.title || ''), card.subtitle ? h('div.muted', null, card.subtitle) : null))))];
      case 'webview':
        return [attachment('file', r.url, r.name || r.label || 'Web page')];
      case 'handover':
        return [h('div.bubble', null, h('span.muted', null, 'Handed the conversation over to an agent'))];
      case 'pause':
        return [];
    }
    return [h('div.bubble', null, h('span.muted', null, '[' + r.type + ']'))];
  }

  function attachment(type, url, name, mimeType) {
    const href = webURL(url);
    const label = name || (href ? decodeURIComponent(new URL(href).pathname.split('/').pop() || href) : 'attachment');
    if (!href) return h('div.bubble', null, h('span.muted', null, label + ' (no link)'));
    if (type === 'image') return h('a', { href, target: '_blank', rel: 'noopener noreferrer', title: label }, h('img.media', { src: href, alt: label, loading: 'lazy' }));
    if (type === 'video') return h('video.media', { src: href, controls: true, preload: 'metadata' });
    if (type === 'audio') return h('audio', { src: href, controls: true, preload: 'none' });
    const ext = (label.split('.').pop() || '').slice(0, 4).toUpperCase();
    return h('a.file', { href, target: '_blank', rel: 'noopener noreferrer', title: mimeType || label },
      h('span.file-icon', null, ext && ext !== label.toUpperCase() ? ext : 'FILE'), h('span.file-name', null, label));
  }

  // linkify turns http(s) URLs in text into links, as text nodes and anchors (never HTML).
  function linkify(text) {
    const parts = [];
    const re = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
    let last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) parts.push(text.slice(last, m.index));
      const href = webURL(m[0]);
      parts.push(href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, m[0]) : m[0]);
      last = m.index + m[0].length;
    }
    if (last < text.length) parts.push(text.slice(last));
    return parts;
  }

  function renderTyping() {
    if (!pane) return;
    const t = state.typing;
    pane.typing.textContent = t && t.until > Date.now() ? `${t.agent.agent_name} is typing…` : '';
  }

  function renderContext() {
    const el = $('#context');
    const c = state.open;
    app.classList.toggle('nothing-open', !c);
    if (!c) { el.replaceChildren(); return; }
    const ctx = c.context || {};
    const user = ctx.user || {};
    const shown = new Set(['display_name', 'avatar', 'email', 'user_id']);
    const rows = (obj, skip) => Object.entries(obj || {}).filter(([k, v]) => !(skip && skip.has(k)) && v !== null && v !== '')
      .flatMap(([k, v]) => [h('dt', null, k.replace(/_/g, ' ')), h('dd', null, typeof v === 'object' ? h('code', null, JSON.stringify(v)) : String(v))]);
    const sections = [
      h('section.ctx-section', null, h('div.ctx-person', null, avatar(c.user.name, c.user.avatar, 'lg'),
        h('div', null, h('strong', null, c.user.name), h('span.muted.small', null, c.user.email || 'No email')))),
    ];
    const userRows = rows(user, shown);
    if (userRows.length) sections.push(h('section.ctx-section', null, h('h3', null, 'User'), h('dl.kv', null, userRows)));
    if (Array.isArray(ctx.tags) && ctx.tags.length) {
      sections.push(h('section.ctx-section', null, h('h3', null, 'Tags'), h('div.tags', null, ctx.tags.map((t) => h('span.tag', null, String(t))))));
    }
    const custom = Object.fromEntries(Object.entries(ctx).filter(([k]) => !['user', 'tags', 'channels', 'global'].includes(k)));
    const customRows = rows(custom);
    if (customRows.length) sections.push(h('section.ctx-section', null, h('h3', null, 'Variables'), h('dl.kv', null, customRows)));
    const globalRows = rows(ctx.global);
    if (globalRows.length) sections.push(h('section.ctx-section', null, h('h3', null, 'Global'), h('dl.kv', null, globalRows)));
    sections.push(h('section.ctx-section', null, h('h3', null, 'Conversation'), h('dl.kv', null,
      h('dt', null, 'channel'), h('dd', null, c.integration_name),
      h('dt', null, 'status'), h('dd', null, chip(c)),
      h('dt', null, 'started'), h('dd', null, fullFmt.format(c.created_at)),
      h('dt', null, 'session'), h('dd', null, h('code', null, c.session_id)),
      c.external_session_id ? [h('dt', null, 'external id'), h('dd', null, h('code', null, c.external_session_id))] : null)));
    el.replaceChildren(...sections);
  }

  // ---- Loading ----------------------------------------------------------------------------

  async function reload() {
    state.loading = true;
    try {
      const [list, ints] = await Promise.all([
        api('GET', `/conversations?view=open&limit=${LIST_LIMIT}`),
        api('GET', '/integrations'),
      ]);
      state.convs = new Map(list.conversations.map((c) => [c.id, c]));
      state.more = list.counts.open > list.conversations.length;
      state.integrations = ints.integrations;
      renderIntegrations();
      if (state.openId) await loadOpen(state.openId);
    } catch (e) {
      toast(e.message, 'error');
    } finally {
      state.loading = false;
      const events = state.buffered;
      state.buffered = [];
      for (const [type, data] of events) handle(type, data);
      schedule({ list: true, conv: true, messages: true, context: true });
    }
  }

  function renderIntegrations() {
    const sel = $('#integration');
    sel.replaceChildren(h('option', { value: '' }, 'All channels'), ...state.integrations.map((i) => h('option', { value: i.id }, i.name || i.id.slice(0, 8))));
    sel.value = state.integration;
    sel.classList.toggle('hidden', state.integrations.length < 2);
  }

  async function loadOpen(id) {
    const [detail, msgs] = await Promise.all([api('GET', `/conversations/${id}`), loadMessages(id)]);
    if (state.openId !== id) return;
    state.open = detail.conversation;
    state.messages = new Map(msgs.map((m) => [m.id, m]));
    markReadSoon();
  }

  async function loadMessages(id) {
    let all = [], after = '';
    for (;;) {
      const page = await api('GET', `/conversations/${id}/messages?limit=500${after ? '&after=' + after : ''}`);
      all = all.concat(page.messages);
      if (!page.next) return all;
      after = page.next;
    }
  }

  async function openConversation(id) {
    if (!id) return;
    saveDraft();
    state.openId = id;
    state.typing = null;
    state.attachments = [];
    history.replaceState(null, '', `#${state.view}/${id}`);
    buildPane();
    pane.textarea.value = state.drafts.get(id) || '';
    renderPending();
    const known = state.convs.get(id);
    if (known) { state.open = known; state.messages = new Map(); schedule({ list: true, conv: true, messages: true, context: true }); }
    try {
      await loadOpen(id);
    } catch (e) {
      toast(e.message, 'error');
    }
    schedule({ list: true, conv: true, messages: true, context: true });
  }

  // ---- Live stream ------------------------------------------------------------------------

  function setLive(on, text) {
    const el = $('#live');
    el.className = 'live ' + (on ? 'on' : 'off');
    el.textContent = text;
  }

  let source = null;
  function connect() {
    source = new EventSource(API + '/stream');
    source.addEventListener('ready', () => { setLive(true, 'Live'); reload(); });
    for (const type of ['conversation', 'message', 'typing', 'reset']) {
      source.addEventListener(type, (e) => {
        const data = JSON.parse(e.data);
        if (state.loading) state.buffered.push([type, data]);
        else handle(type, data);
      });
    }
    source.onerror = () => {
      setLive(false, 'Reconnecting…');
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (a login that ended?): find out, then try again.
        api('GET', '/me').catch(() => {}).finally(() => setTimeout(connect, 3000));
      }
    };
  }

  function handle(type, data) {
    switch (type) {
      case 'conversation': return onConversation(data);
      case 'message': return onMessage(data);
      case 'typing': return onTyping(data);
      case 'reset': return reload();
    }
  }

  function onConversation(c) {
    if (isOpen(c)) state.convs.set(c.id, c);
    else state.convs.delete(c.id);
    const open = state.open;
    if (open && open.id === c.id) {
      state.open = Object.assign({}, open, c, { context: open.context });
      schedule({ conv: true, context: true });
      if (isMine(c)) markReadSoon();
    } else if (open && open.session_id === c.session_id && !isOpen(open) && isOpen(c)) {
      // The user wrote after the conversation was resolved: follow them into the new one.
      state.openId = c.id;
      state.open = Object.assign({}, c, { context: open.context });
      history.replaceState(null, '', `#${state.view}/${c.id}`);
      schedule({ conv: true, context: true, messages: true });
    }
    schedule({ list: true });
  }

  // keep stores a message, keeping the receipts of the copy already held when they are further
  // along: an API answer read before a receipt can arrive after the stream told of it.
  function keep(m) {
    const old = state.messages.get(m.id);
    if (old) {
      m.delivered_at = m.delivered_at || old.delivered_at;
      m.read_at = m.read_at || old.read_at;
    }
    state.messages.set(m.id, m);
  }

  function onMessage(e) {
    if (!state.open || state.open.session_id !== e.session_id) return;
    keep(e.message);
    if (e.message.author === 'agent' && state.typing && e.message.agent && state.typing.agent.agent_id === e.message.agent.agent_id) state.typing = null;
    schedule({ messages: true });
    if (e.message.author === 'user') markReadSoon();
  }

  let typingTimer = 0;
  function onTyping(e) {
    if (!state.open || e.conversation_id !== state.open.id || e.agent.agent_id === me.id) return;
    state.typing = e.action === 'start' ? { agent: e.agent, until: Date.now() + 8000 } : null;
    renderTyping();
    clearTimeout(typingTimer);
    if (state.typing) typingTimer = setTimeout(renderTyping, 8100);
  }

  // Reading: the agent holding the conversation, looking at it, reads the user's messages.
  let readTimer = 0;
  function markReadSoon() {
    clearTimeout(readTimer);
    readTimer = setTimeout(markRead, 250);
  }

  // markRead reads the open conversation's user messages, if the agent holds it and is looking.
  function markRead() {
    clearTimeout(readTimer);
    const c = state.open;
    if (!c || !isMine(c) || !isOpen(c) || document.visibilityState !== 'visible') return;
    const unread = [...state.messages.values()].some((m) => m.author === 'user' && !m.read_at);
    if (unread || c.unread > 0) api('POST', `/conversations/${c.id}/read`).catch(() => {});
  }
  document.addEventListener('visibilitychange', markReadSoon);

  // ---- Actions ----------------------------------------------------------------------------

  async function act(path, body, done) {
    const c = state.open;
    if (!c) return;
    try {
      const res = await api('POST', `/conversations/${c.id}/${path}`, body);
      if (res && res.conversation) onConversation(res.conversation);
      if (done) done(res);
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  // Joining while looking reads at once, from the join's own answer: waiting for the debounce
  // would let a live event that still shows the conversation in the queue decide instead.
  const join = () => act('join', undefined, () => { toast('You joined the conversation'); pane && pane.textarea.focus(); markRead(); });
  const leave = () => act('leave', undefined, () => toast('Back in the queue'));
  const resolve = () => act('resolve', undefined, () => toast('Conversation resolved'));

  async function transferMenu(ev) {
    const c = state.open;
    if (!c || !isOpen(c)) return;
    closeMenus();
    const anchor = pane.head.querySelector('.actions');
    const menu = h('div.menu', { role: 'menu' }, h('h4', null, 'Transfer to'), h('div.muted', null, 'Loading…'));
    anchor.append(menu);
    try {
      const { agents } = await api('GET', `/agents?integration_id=${c.integration_id}`);
      const others = agents.filter((a) => !(c.assignee && a.agent_id === c.assignee.agent_id));
      menu.replaceChildren(h('h4', null, 'Transfer to'), ...(others.length ? others.map((a) =>
        h('button', { role: 'menuitem', onclick: () => { closeMenus(); act('transfer', { agent_id: a.agent_id }, () => toast('Transferred to ' + a.agent_name)); } },
          avatar(a.agent_name, a.agent_avatar, 'sm'), h('span', null, a.agent_id === me.id ? a.agent_name + ' (you)' : a.agent_name))) :
        [h('div.muted', null, 'No other agent works in this channel.')]));
      const first = menu.querySelector('button');
      if (first) first.focus();
    } catch (e) {
      menu.remove();
      toast(e.message, 'error');
    }
    if (ev) ev.stopPropagation();
  }

  function attachMenu(ev) {
    closeMenus();
    const input = h('input', { type: 'url', placeholder: 'https://…/picture.png', 'aria-label': 'Link to a file or picture' });
    const add = () => {
      const url = webURL(input.value.trim());
      if (!url || !/^https?:/.test(input.value.trim())) { toast('Give an http or https link', 'error'); return; }
      state.attachments.push(guessAttachment(url));
      renderPending();
      closeMenus();
      pane.textarea.focus();
    };
    input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); add(); } if (e.key === 'Escape') closeMenus(); });
    const menu = h('div.menu', { role: 'dialog' }, h('h4', null, 'Attach by link'), input, h('button', { onclick: add }, 'Attach'));
    menu.classList.add('menu-up');
    pane.composer.querySelector('.composer-bar').append(menu);
    input.focus();
    ev.stopPropagation();
  }

  const kinds = { image: ['png', 'jpg', 'jpeg', 'gif', 'webp', 'svg', 'avif'], video: ['mp4', 'webm', 'mov'], audio: ['mp3', 'ogg', 'wav', 'm4a'] };
  const mimes = { jpg: 'image/jpeg', svg: 'image/svg+xml', mov: 'video/quicktime', mp3: 'audio/mpeg', m4a: 'audio/mp4', pdf: 'application/pdf' };
  function guessAttachment(url) {
    const name = decodeURIComponent(new URL(url).pathname.split('/').pop() || '') || 'file';
    const ext = (name.includes('.') ? name.split('.').pop() : '').toLowerCase();
    const type = Object.keys(kinds).find((k) => kinds[k].includes(ext)) || 'file';
    const mime = mimes[ext] || (type !== 'file' ? type + '/' + ext : 'application/octet-stream');
    return { type, mime_type: mime, url, filename: name };
  }

  // uploadFiles lets the agent pick files, uploads each to the conversation's session (ask for a
  // URL, PUT the bytes) and queues it for the next message by its file_id.
  function uploadFiles(ev) {
    closeMenus();
    const c = state.open;
    if (!c || !isOpen(c)) return;
    const picker = h('input', { type: 'file', multiple: true, hidden: true });
    picker.addEventListener('change', async () => {
      for (const f of picker.files) {
        const type = f.type || 'application/octet-stream';
        try {
          const up = await api('POST', `/conversations/${c.id}/files/upload-url`, { filename: f.name, content_type: type });
          const res = await fetch(up.upload_url, { method: 'PUT', headers: { 'Content-Type': type }, body: f });
          if (!res.ok) {
            const data = await res.json().catch(() => ({}));
            throw new Error(data.error_message || 'Upload failed (' + res.status + ')');
          }
          const kind = ['image', 'video', 'audio'].find((k) => type.startsWith(k + '/')) || 'file';
          state.attachments.push({ type: kind, mime_type: type, file_id: up.file_id, filename: f.name });
          renderPending();
        } catch (e) {
          toast(`${f.name}: ${e.message}`, 'error');
        }
      }
      picker.remove();
      pane.textarea.focus();
    });
    document.body.append(picker);
    picker.click();
    if (ev) ev.stopPropagation();
  }

  function renderPending() {
    const el = pane.composer.querySelector('.pending');
    el.replaceChildren(...state.attachments.map((a, i) => h('span.chip', null, icon(a.file_id ? 'clip' : 'link'), a.filename,
      h('button', { title: 'Remove', 'aria-label': 'Remove ' + a.filename, onclick: () => { state.attachments.splice(i, 1); renderPending(); } }, icon('x')))));
    el.classList.toggle('hidden', !state.attachments.length);
  }

  function closeMenus() { for (const m of document.querySelectorAll('.menu')) m.remove(); }
  document.addEventListener('click', (e) => { if (!e.target.closest('.menu')) closeMenus(); });

  // Composer and typing: start when the agent types, stop after a pause or on send.
  let typing = false, typingStop = 0;
  function onComposerInput() {
    const ta = pane.textarea;
    ta.style.height = 'auto';
    ta.style.height = Math.min(ta.scrollHeight, 180) + 'px';
    if (!isMine(state.open)) return;
    if (!typing && ta.value.trim()) { typing = true; setTyping('start'); }
    clearTimeout(typingStop);
    typingStop = setTimeout(stopTyping, 4000);
  }

  function stopTyping() {
    clearTimeout(typingStop);
    if (typing) { typing = false; setTyping('stop'); }
  }

  function setTyping(action) {
    const c = state.open;
    if (c) api('POST', `/conversations/${c.id}/typing`, { action }).catch(() => {});
  }

  function onComposerKey(e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
    if (e.key === 'Escape') { e.target.blur(); }
  }

  function saveDraft() {
    if (pane && state.openId) {
      const v = pane.textarea.value;
      if (v) state.drafts.set(state.openId, v); else state.drafts.delete(state.openId);
    }
    stopTyping();
  }

  async function send() {
    const c = state.open;
    if (!c || !isOpen(c)) return;
    const ta = pane.textarea;
    const text = ta.value.trim();
    const attachments = state.attachments.slice();
    if (!text && !attachments.length) return;
    ta.value = '';
    ta.style.height = 'auto';
    state.attachments = [];
    renderPending();
    state.drafts.delete(c.id);
    stopTyping();
    try {
      const input = { text };
      if (attachments.length) input.attachments = attachments;
      const res = await api('POST', `/conversations/${c.id}/messages`, { input });
      if (state.open && state.open.session_id === c.session_id) {
        keep(res.message);
        pane.pinned = true;
        schedule({ messages: true });
      }
    } catch (e) {
      ta.value = text;
      state.attachments = attachments;
      renderPending();
      toast(e.message, 'error');
    }
  }

  // ---- Navigation and keyboard ------------------------------------------------------------

  function setView(view) {
    state.view = view;
    history.replaceState(null, '', '#' + view + (state.openId ? '/' + state.openId : ''));
    schedule({ list: true });
  }

  function step(delta) {
    const list = visible();
    if (!list.length) return;
    const i = list.findIndex((c) => c.id === state.openId);
    const next = list[i < 0 ? 0 : Math.min(list.length - 1, Math.max(0, i + delta))];
    openConversation(next.id);
    const el = document.querySelector(`.item[data-id="${next.id}"]`);
    if (el) el.scrollIntoView({ block: 'nearest' });
  }

  document.addEventListener('keydown', (e) => {
    const t = e.target;
    const typingIn = t.closest && t.closest('input, textarea, select, [contenteditable]');
    if (e.key === 'Escape') { closeMenus(); if (typingIn) t.blur(); return; }
    if (typingIn || e.ctrlKey || e.metaKey || e.altKey) return;
    const c = state.open;
    switch (e.key) {
      case 'j': step(1); break;
      case 'k': step(-1); break;
      case '1': setView('queue'); break;
      case '2': setView('mine'); break;
      case '3': setView('open'); break;
      case '/': $('#search').focus(); break;
      case 'r': if (pane && !pane.composer.classList.contains('hidden')) pane.textarea.focus(); break;
      case 'J': if (c && isOpen(c) && !isMine(c)) join(); break;
      case 'L': if (c && isMine(c) && isOpen(c)) leave(); break;
      case 'E': if (c && isOpen(c)) resolve(); break;
      case 'T': transferMenu(); break;
      case '?': $('#help').showModal(); break;
      default: return;
    }
    e.preventDefault();
  });

  for (const tab of document.querySelectorAll('.tab')) tab.addEventListener('click', () => setView(tab.dataset.view));
  $('#search').addEventListener('input', (e) => { state.search = e.target.value; schedule({ list: true }); });
  $('#integration').addEventListener('change', (e) => { state.integration = e.target.value; schedule({ list: true }); });
  $('#help-button').addEventListener('click', () => $('#help').showModal());
  setInterval(() => schedule({ list: true }), 30000); // keep "waiting 3m" honest

  // ---- Start ------------------------------------------------------------------------------

  $('#me-avatar').replaceWith(Object.assign(avatar(me.name, me.avatar, 'sm'), { id: 'me-avatar' }));
  $('#me-name').textContent = me.name;
  $('#me-email').textContent = me.email;
  const [view, id] = location.hash.slice(1).split('/');
  if (['queue', 'mine', 'open'].includes(view)) state.view = view;
  renderList();
  if (id) openConversation(id);
  connect();
})();
