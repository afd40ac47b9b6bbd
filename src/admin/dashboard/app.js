// The luas dashboard: reads GET /api/v1/services and GET /api/v1/history
// every second and draws one card per service; changes weights, rolls back
// and promotes through the same admin API as `luas ctl`.
//
// Plain JavaScript, no build step, served from the binary under a strict
// Content-Security-Policy: no inline script or style, no eval. The admin
// token (asked for only when a change answers 401) lives in sessionStorage
// and is never logged.
'use strict';

(function () {
  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 5000;
  const TOKEN_KEY = 'luas.admin-token';
  // The stable group is always blue; the others take the next colours.
  const COLORS = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#0891b2', '#db2777', '#ca8a04', '#475569'];
  const CHART_HEIGHT = 190;

  const cards = new Map(); // service name -> Card
  let paused = false;
  let timer = null;
  let polling = false; // a poll is waiting for its answers
  let changes = 0; // changes answered so far; a poll older than a card's last change is stale for it
  let lastHistory = null; // the last /api/v1/history answer, or null
  let historyProblem = null; // why there is no history, or null

  // ---------------------------------------------------------------- helpers

  // h('div', {class: 'x', dataset: {testid: 'y'}}, child, 'text', ...)
  function h(tag, attributes, ...children) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') element.className = value;
      else if (key === 'dataset') Object.assign(element.dataset, value);
      else if (key === 'text') element.textContent = value;
      else if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
      else if (value === true) element.setAttribute(key, '');
      else element.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return element;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function s(tag, attributes, ...children) {
    const element = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (key === 'text') element.textContent = value;
      else element.setAttribute(key, value);
    }
    for (const child of children) if (child) element.append(child);
    return element;
  }

  function setText(element, text) {
    text = String(text);
    if (element.textContent !== text) element.textContent = text;
  }

  const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);

  function fmtMs(v) {
    if (!isNumber(v)) return '—';
    if (v < 1) return v.toFixed(2) + ' ms';
    if (v < 100) return v.toFixed(1) + ' ms';
    if (v < 10000) return Math.round(v) + ' ms';
    return (v / 1000).toFixed(1) + ' s';
  }
  function fmtRps(v) {
    if (!isNumber(v)) return '—';
    if (v === 0) return '0';
    if (v < 1) return v.toFixed(2);
    if (v < 10) return v.toFixed(1);
    return Math.round(v).toLocaleString('en');
  }
  function fmtRate(v) {
    if (!isNumber(v)) return '—';
    if (v === 0) return '0 %';
    const pct = v * 100;
    return (pct < 1 ? pct.toFixed(2) : pct.toFixed(1)) + ' %';
  }
  function fmtShare(v) {
    return isNumber(v) ? (v * 100).toFixed(1) + ' %' : '—';
  }
  function fmtCount(v) {
    return isNumber(v) ? v.toLocaleString('en') : '—';
  }
  function fmtLe(le) {
    if (!isNumber(le)) return '+Inf';
    if (le >= 1) return +le.toFixed(2) + ' s';
    return +(le * 1000).toFixed(2) + ' ms';
  }
  function clock(date) {
    return date.toLocaleTimeString('en-GB', { hour12: false });
  }
  function weightsText(groups) {
    return groups.map((g) => `${g.name} ${g.weight}`).join(' · ');
  }

  // ------------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function request(method, path, body, token) {
    const headers = { Accept: 'application/json' };
    // Changes always carry a JSON content type, so a cross-site page cannot
    // forge one as a "simple" request without a CORS preflight.
    if (method !== 'GET') headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
        signal: controller.signal,
      });
    } catch (error) {
      throw new ApiError(0, error.name === 'AbortError'
        ? `no answer within ${FETCH_TIMEOUT_MS / 1000} s`
        : 'cannot reach luas');
    } finally {
      clearTimeout(timeout);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const reason = data && typeof data.error === 'string' ? data.error : response.statusText;
      throw new ApiError(response.status, `${response.status} ${response.statusText}: ${reason}`);
    }
    return data;
  }

  function getToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch (_) {
      return null;
    }
  }
  function setToken(token) {
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // sessionStorage unavailable: the token is asked for again next time.
    }
    document.getElementById('forget-token').hidden = !token;
  }

  // A change: on 401, ask for the token and try again with it.
  async function change(method, path, body) {
    let token = getToken();
    for (;;) {
      try {
        return await request(method, path, body, token);
      } catch (error) {
        if (error.status !== 401) throw error;
        const entered = await askToken(token
          ? 'luas refused the token given. Enter the admin token again.'
          : 'This luas accepts changes only with its admin token (admin.token_file).');
        if (entered === null) throw new ApiError(401, '401 Unauthorized: no admin token given');
        token = entered;
        setToken(token);
      }
    }
  }

  // ---------------------------------------------------------------- dialogs

  function openDialog(dialog) {
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
  }
  function closeDialog(dialog) {
    if (typeof dialog.close === 'function') dialog.close();
    else dialog.removeAttribute('open');
  }

  // Resolves with true (confirmed) or false.
  function confirmAction({ title, body, confirmLabel, danger }) {
    const dialog = document.getElementById('confirm');
    const form = document.getElementById('confirm-form');
    const yes = document.getElementById('confirm-yes');
    const no = document.getElementById('confirm-no');
    setText(document.getElementById('confirm-title'), title);
    document.getElementById('confirm-body').replaceChildren(...body);
    setText(yes, confirmLabel);
    yes.className = danger ? 'danger' : 'primary';
    return new Promise((resolve) => {
      const finish = (answer) => {
        form.removeEventListener('submit', onSubmit);
        no.removeEventListener('click', onNo);
        dialog.removeEventListener('cancel', onCancel);
        closeDialog(dialog);
        resolve(answer);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        finish(true);
      };
      const onNo = () => finish(false);
      const onCancel = (event) => {
        event.preventDefault();
        finish(false);
      };
      form.addEventListener('submit', onSubmit);
      no.addEventListener('click', onNo);
      dialog.addEventListener('cancel', onCancel);
      openDialog(dialog);
      no.focus();
    });
  }

  // Resolves with the token entered, or null when cancelled.
  function askToken(reason) {
    const dialog = document.getElementById('token-dialog');
    const form = document.getElementById('token-form');
    const input = document.getElementById('token-input');
    const cancel = document.getElementById('token-cancel');
    setText(document.getElementById('token-reason'), reason);
    input.value = '';
    return new Promise((resolve) => {
      const finish = (answer) => {
        form.removeEventListener('submit', onSubmit);
        cancel.removeEventListener('click', onCancel);
        dialog.removeEventListener('cancel', onEscape);
        input.value = '';
        closeDialog(dialog);
        resolve(answer);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (token) finish(token);
      };
      const onCancel = () => finish(null);
      const onEscape = (event) => {
        event.preventDefault();
        finish(null);
      };
      form.addEventListener('submit', onSubmit);
      cancel.addEventListener('click', onCancel);
      dialog.addEventListener('cancel', onEscape);
      openDialog(dialog);
      input.focus();
    });
  }

  // ----------------------------------------------------------------- charts

  // The colour of a group: blue for the stable group, then the palette in
  // the order the service lists its groups.
  function groupColor(service, group) {
    if (group === service.stable_group) return COLORS[0];
    const others = (service.groups || []).map((g) => g.name).filter((n) => n !== service.stable_group);
    const index = others.indexOf(group);
    return COLORS[1 + ((index < 0 ? others.length : index) % (COLORS.length - 1))];
  }

  // A live line chart of one value per group over time.
  class GroupChart {
    constructor(container, testid, { format, tick, fromPoint }) {
      this.container = container;
      this.testid = testid;
      this.format = format; // a value in the legend, with its unit
      this.tick = tick; // a value on the y axis, without
      this.lastIndex = -1;
      this.fromPoint = fromPoint; // (group history, i) -> value
      this.plot = null;
      this.key = '';
      this.box = h('div', { class: 'chart', dataset: { testid, points: '0', lastT: '' } });
      this.note = h('p', { class: 'chart-note', hidden: true });
      container.append(this.box, this.note);
      this.resizer = null;
      if (typeof ResizeObserver === 'function') {
        this.resizer = new ResizeObserver(() => this.resize());
        this.resizer.observe(this.box);
      }
    }

    /** Frees the plot and its listeners (the service left the config). */
    destroy() {
      if (this.resizer) this.resizer.disconnect();
      if (this.plot) this.plot.destroy();
      this.plot = null;
    }

    width() {
      return Math.max(200, Math.floor(this.box.clientWidth || 400));
    }

    resize() {
      if (this.plot && Math.abs(this.plot.width - this.width()) > 1) {
        this.plot.setSize({ width: this.width(), height: CHART_HEIGHT });
      }
    }

    // Without the cursor over the chart, its legend shows the latest values.
    showLatest() {
      const plot = this.plot;
      if (plot && plot.cursor.idx == null && this.lastIndex >= 0) plot.setLegend({ idx: this.lastIndex }, false);
    }

    showNote(text) {
      this.note.hidden = !text;
      setText(this.note, text || '');
    }

    // groups: [{name, t, ...}] from the history; service: for the colours.
    update(service, groups) {
      if (typeof uPlot !== 'function') {
        this.showNote('The chart library did not load.');
        return;
      }
      // One x axis for every group: the union of their timestamps.
      const times = new Set();
      for (const group of groups) for (const t of group.t || []) times.add(t);
      const xs = Array.from(times).sort((a, b) => a - b);
      const index = new Map(xs.map((t, i) => [t, i]));
      const data = [xs.map((t) => t / 1000)];
      for (const group of groups) {
        const column = new Array(xs.length).fill(null);
        (group.t || []).forEach((t, i) => {
          const value = this.fromPoint(group, i);
          column[index.get(t)] = isNumber(value) ? value : null;
        });
        data.push(column);
      }
      const key = groups.map((g) => g.name + '=' + groupColor(service, g.name)).join(',');
      this.lastIndex = xs.length - 1;
      if (!this.plot || key !== this.key) {
        if (this.plot) this.plot.destroy();
        this.key = key;
        this.plot = new uPlot(this.options(service, groups), data, this.box);
      } else {
        this.plot.setData(data);
      }
      this.showLatest();
      this.box.dataset.points = String(xs.length);
      this.box.dataset.lastT = xs.length ? String(xs[xs.length - 1]) : '';
      this.showNote(xs.length ? '' : 'No samples yet.');
    }

    options(service, groups) {
      const format = this.format;
      const tick = this.tick;
      const axis = {
        stroke: '#64748b',
        grid: { stroke: '#eef1f5', width: 1 },
        ticks: { stroke: '#e2e8f0', width: 1 },
        font: '11px system-ui, sans-serif',
      };
      return {
        width: this.width(),
        height: CHART_HEIGHT,
        cursor: { drag: { x: false, y: false }, points: { size: 6 } },
        legend: { live: true },
        hooks: { setLegend: [() => this.showLatest()] },
        scales: {
          x: { time: true },
          y: { range: (u, min, max) => [0, isNumber(max) && max > 0 ? max * 1.15 : 1] },
        },
        series: [
          { label: 'time', value: (u, v) => (v === null || v === undefined ? '—' : clock(new Date(v * 1000))) },
          ...groups.map((group) => ({
            label: group.name,
            stroke: groupColor(service, group.name),
            width: 2,
            spanGaps: false,
            points: { show: false },
            value: (u, v) => format(v),
          })),
        ],
        axes: [
          Object.assign({}, axis, {
            space: 70,
            values: (u, values) => values.map((v) => clock(new Date(v * 1000))),
          }),
          Object.assign({}, axis, {
            size: 46,
            values: (u, values) => values.map(tick),
          }),
        ],
      };
    }
  }

  // A bar chart of one endpoint's latency histogram (non-cumulative counts).
  function distributionSvg(buckets, from, to, color) {
    const W = 320;
    const H = 130;
    const left = 34;
    const right = 6;
    const top = 8;
    const bottom = 30;
    const shown = buckets.slice(from, to + 1);
    const total = buckets.reduce((sum, b) => sum + (isNumber(b.count) ? b.count : 0), 0);
    const max = Math.max(1, ...shown.map((b) => b.count || 0));
    const plotW = W - left - right;
    const plotH = H - top - bottom;
    const step = plotW / shown.length;
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'dist-svg', role: 'img' });
    // y: share of the endpoint's requests, with the tallest bar's share on top.
    const maxShare = total ? max / total : 0;
    svg.append(
      s('line', { x1: left, x2: W - right, y1: top + plotH, y2: top + plotH, class: 'dist-axis' }),
      s('line', { x1: left, x2: W - right, y1: top, y2: top, class: 'dist-gridline' }),
      s('text', { x: left - 4, y: top + 4, class: 'dist-label end', text: (maxShare * 100).toFixed(0) + '%' }),
      s('text', { x: left - 4, y: top + plotH, class: 'dist-label end', text: '0' }),
    );
    const labelEvery = Math.max(1, Math.ceil(40 / step)); // room for "≤7.5ms"
    shown.forEach((bucket, i) => {
      const count = bucket.count || 0;
      const height = (count / max) * plotH;
      const x = left + i * step;
      const lower = from + i > 0 ? buckets[from + i - 1].le : 0;
      const title = `${fmtLe(lower)} – ${fmtLe(bucket.le)}: ${fmtCount(count)} request${count === 1 ? '' : 's'}`
        + (total ? ` (${((count / total) * 100).toFixed(1)} %)` : '');
      const bar = s('rect', {
        x: (x + step * 0.12).toFixed(2),
        y: (top + plotH - height).toFixed(2),
        width: Math.max(1, step * 0.76).toFixed(2),
        height: Math.max(count ? 1 : 0, height).toFixed(2),
        fill: color,
        class: 'dist-bar',
      }, s('title', { text: title }));
      svg.append(bar);
      if (i % labelEvery === 0) {
        svg.append(s('text', {
          x: (x + step / 2).toFixed(2),
          y: H - bottom + 12,
          class: 'dist-label middle',
          text: '≤' + fmtLe(bucket.le).replace(' ', ''),
        }));
      }
    });
    svg.append(s('text', { x: left + plotW / 2, y: H - 4, class: 'dist-label middle muted', text: 'latency bucket (upper bound)' }));
    return svg;
  }

  // ------------------------------------------------------------------ cards

  class Card {
    constructor(name) {
      this.name = name;
      this.service = null;
      this.busy = false;
      this.changedAt = 0; // the value of `changes` after this card's last change
      this.dirty = new Set(); // groups whose weight input was edited
      this.groupRows = new Map();
      this.endpointKey = '';
      this.distKey = '';

      const id = (what) => `${what}-${name}`;
      this.rollbackButton = h('button', { type: 'button', class: 'danger', dataset: { testid: id('rollback') }, text: 'Roll back', onclick: () => this.rollback() });
      this.promoteButton = h('button', { type: 'button', class: 'primary', dataset: { testid: id('promote') }, text: 'Promote…', onclick: () => this.promote() });
      this.resetButton = h('button', { type: 'button', class: 'ghost', dataset: { testid: id('reset') }, text: 'Reset to file weights', onclick: () => this.reset() });
      this.meta = h('span', { class: 'meta' });
      this.rolloutBox = h('div', { class: 'rollout', dataset: { testid: id('rollout') }, hidden: true });
      this.noteBox = h('div', { class: 'note', hidden: true });
      this.bannerText = h('span', { class: 'banner-text' });
      this.banner = h('div', { class: 'banner', role: 'status', dataset: { testid: id('banner') }, hidden: true },
        this.bannerText,
        h('button', { type: 'button', class: 'banner-close', 'aria-label': 'Dismiss', dataset: { testid: id('banner-close') }, text: '×', onclick: () => { this.banner.hidden = true; } }));

      this.groupBody = h('tbody');
      this.applyButton = h('button', { type: 'button', class: 'primary', dataset: { testid: id('apply-weights') }, text: 'Apply weights', disabled: true, onclick: () => this.applyWeights() });
      this.discardButton = h('button', { type: 'button', class: 'ghost', dataset: { testid: id('discard-weights') }, text: 'Discard edits', disabled: true, onclick: () => this.discardEdits() });
      this.editorHint = h('span', { class: 'hint', dataset: { testid: id('weights-preview') } });
      this.endpointBody = h('tbody');
      this.distGrid = h('div', { class: 'dist-grid', dataset: { testid: id('dist') } });
      this.distNote = h('p', { class: 'chart-note', hidden: true });

      const rpsPanel = h('div', { class: 'panel' }, h('h3', {}, 'Requests/s per group'));
      const p99Panel = h('div', { class: 'panel' }, h('h3', {}, 'p99 latency per group (ms, last 10 s)'));
      const errorPanel = h('div', { class: 'panel' }, h('h3', {}, 'Error rate per group (%, last 10 s)'));
      const tick = (v) => (isNumber(v) ? String(+v.toFixed(3)) : '');
      this.charts = [
        new GroupChart(rpsPanel, id('chart-rps'), {
          format: (v) => (isNumber(v) ? fmtRps(v) + ' /s' : '—'),
          tick,
          fromPoint: (g, i) => (g.rps || [])[i],
        }),
        new GroupChart(p99Panel, id('chart-p99'), {
          format: fmtMs,
          tick,
          fromPoint: (g, i) => (g.p99_ms || [])[i],
        }),
        new GroupChart(errorPanel, id('chart-errors'), {
          format: (v) => fmtRate(isNumber(v) ? v / 100 : v),
          tick,
          fromPoint: (g, i) => {
            const v = (g.error_rate || [])[i];
            return isNumber(v) ? v * 100 : v;
          },
        }),
      ];

      this.element = h('section', { class: 'card', dataset: { testid: id('service'), service: name } },
        h('div', { class: 'card-head' },
          h('div', { class: 'title' }, h('h2', {}, name), this.meta),
          h('div', { class: 'actions' }, this.resetButton, this.promoteButton, this.rollbackButton)),
        this.banner,
        this.rolloutBox,
        this.noteBox,
        h('div', { class: 'row two' },
          h('div', { class: 'panel' },
            h('h3', {}, 'Groups'),
            h('table', { class: 'table groups' },
              h('thead', {}, h('tr', {},
                h('th', {}, 'Group'), h('th', { class: 'num' }, 'Weight'), h('th', {}, 'Share'),
                h('th', { class: 'num' }, 'File'), h('th', { class: 'num' }, 'Req/s'),
                h('th', { class: 'num' }, 'Errors'), h('th', { class: 'num' }, 'p99'))),
              this.groupBody),
            h('div', { class: 'editor' }, this.applyButton, this.discardButton, this.editorHint)),
          h('div', { class: 'panel' },
            h('h3', {}, 'Endpoints'),
            h('div', { class: 'scroll' },
              h('table', { class: 'table endpoints' },
                h('thead', {}, h('tr', {},
                  h('th', {}, 'Endpoint'), h('th', {}, 'Health'), h('th', { class: 'num' }, 'In flight'),
                  h('th', { class: 'num' }, 'Req/s'), h('th', { class: 'num' }, 'Errors'),
                  h('th', { class: 'num' }, 'EWMA'), h('th', { class: 'num' }, 'p50'),
                  h('th', { class: 'num' }, 'p90'), h('th', { class: 'num' }, 'p99'))),
                this.endpointBody)),
            h('p', { class: 'small' }, 'Req/s and errors (share of 5xx and failed requests): recent rates. p50/p90/p99: since start. EWMA: the balancer\'s latency estimate. Hover a rate for the totals.'))),
        h('div', { class: 'row three' }, rpsPanel, p99Panel, errorPanel),
        h('div', { class: 'panel' },
          h('h3', {}, 'Latency distribution per endpoint, last 60 s'),
          this.distGrid, this.distNote));
    }

    // --- rendering

    update(service, history) {
      this.service = service;
      const groups = service.groups || [];
      setText(this.meta, `balancer ${service.balancer || '?'} · stable group ${service.stable_group || '?'}`);
      this.renderRollout(service);
      this.renderNote(service);
      this.renderGroups(service, history);
      this.renderEndpoints(service);
      const others = groups.filter((g) => g.name !== service.stable_group);
      this.rollbackButton.disabled = this.busy || others.every((g) => !g.weight);
      this.promoteButton.disabled = this.busy || groups.length < 2;
      this.resetButton.disabled = this.busy || !service.runtime_weights;
      this.renderHistory(service, history);
    }

    renderRollout(service) {
      const rollout = service.rollout;
      this.rolloutBox.hidden = !rollout;
      if (!rollout) return;
      const steps = Array.isArray(rollout.steps) ? rollout.steps : [];
      const step = isNumber(rollout.step) ? rollout.step : 0;
      const status = String(rollout.status || '?').replace(/_/g, ' ');
      const pills = steps.map((weight, i) => h('span', {
        class: 'step' + (i + 1 < step ? ' done' : '') + (i + 1 === step ? ' current' : ''),
        title: `step ${i + 1}: ${weight} %`,
      }, `${weight} %`));
      const windowText = (label, w) => (w
        ? `${label}: ${fmtCount(w.requests)} req, ${fmtCount(w.errors)} errors, p99 ${fmtMs(isNumber(w.p99) ? w.p99 * 1000 : null)}`
        : null);
      const details = [
        isNumber(rollout.seconds_in_step) && rollout.status === 'progressing' ? `${Math.round(rollout.seconds_in_step)} s in this step` : null,
        windowText(rollout.group || 'canary', rollout.canary),
        windowText(service.stable_group || 'stable', rollout.stable),
      ].filter(Boolean).join(' · ');
      this.rolloutBox.dataset.status = rollout.status || '';
      this.rolloutBox.replaceChildren(
        h('div', { class: 'rollout-line' },
          h('strong', {}, `Rollout of ${rollout.group || '?'}`),
          h('span', { class: 'badge ' + String(rollout.status || '') }, status),
          h('span', {}, `step ${step}/${steps.length} (${isNumber(rollout.weight) ? rollout.weight : '?'} %)`),
          h('span', { class: 'steps' }, pills)),
        ...[
          details ? h('div', { class: 'small' }, details) : null,
          rollout.reason ? h('div', { class: 'small' }, rollout.reason) : null,
        ].filter(Boolean));
    }

    renderNote(service) {
      const replaced = service.replaced_by_rollback;
      const parts = [];
      if (service.runtime_weights) parts.push('Runtime weights are in force (the config file\'s are shown as "File").');
      if (replaced && typeof replaced === 'object') {
        parts.push('Last rollback replaced: ' + Object.entries(replaced).map(([g, w]) => `${g} ${w}`).join(' · ') + '.');
      }
      this.noteBox.hidden = parts.length === 0;
      setText(this.noteBox, parts.join(' '));
    }

    renderGroups(service, history) {
      const groups = service.groups || [];
      const historyGroups = new Map(((history && history.groups) || []).map((g) => [g.name, g]));
      const names = groups.map((g) => g.name);
      // Rows follow the service's groups; rebuilt only when they change.
      if (names.join('\n') !== Array.from(this.groupRows.keys()).join('\n')) {
        this.groupRows.clear();
        this.dirty.clear();
        this.groupBody.replaceChildren();
        for (const group of groups) {
          const input = h('input', {
            type: 'number', min: '0', step: '1', inputmode: 'numeric', class: 'weight-input',
            'aria-label': `weight of ${group.name}`,
            dataset: { testid: `weight-${this.name}-${group.name}` },
          });
          input.addEventListener('input', () => {
            this.dirty.add(group.name);
            this.refreshEditor();
          });
          input.addEventListener('keydown', (event) => {
            if (event.key === 'Enter') this.applyWeights();
            if (event.key === 'Escape') this.discardEdits();
          });
          const row = {
            swatch: h('span', { class: 'swatch' }),
            input,
            shareBar: h('span', { class: 'share-fill' }),
            shareText: h('span', { class: 'share-text' }),
            file: h('td', { class: 'num muted' }),
            rps: h('td', { class: 'num', dataset: { testid: `group-rps-${this.name}-${group.name}` } }),
            errors: h('td', { class: 'num' }),
            p99: h('td', { class: 'num' }),
          };
          row.element = h('tr', { dataset: { testid: `group-${this.name}-${group.name}` } },
            h('td', { title: group.name === service.stable_group ? 'the stable group' : '' },
              row.swatch, h('span', { class: 'group-name' }, group.name)),
            h('td', { class: 'num' }, input),
            h('td', {}, h('span', { class: 'share' }, h('span', { class: 'share-track' }, row.shareBar), row.shareText)),
            row.file, row.rps, row.errors, row.p99);
          this.groupRows.set(group.name, row);
          this.groupBody.append(row.element);
        }
      }
      for (const group of groups) {
        const row = this.groupRows.get(group.name);
        const color = groupColor(service, group.name);
        row.swatch.style.background = color;
        row.shareBar.style.background = color;
        row.shareBar.style.width = (isNumber(group.share) ? group.share * 100 : 0).toFixed(1) + '%';
        setText(row.shareText, fmtShare(group.share));
        row.input.dataset.current = String(group.weight);
        if (!this.dirty.has(group.name) && document.activeElement !== row.input) {
          if (row.input.value !== String(group.weight)) row.input.value = String(group.weight);
        }
        const fileWeight = group.file_weight;
        setText(row.file, isNumber(fileWeight) ? (fileWeight === group.weight ? fileWeight : `${fileWeight} ✎`) : '—');
        row.file.title = isNumber(fileWeight) && fileWeight !== group.weight
          ? `The config file says ${fileWeight}; a runtime change set ${group.weight}.` : '';
        // Rates: the last point of the group's history, else the endpoints' sum.
        const past = historyGroups.get(group.name);
        const last = (column) => {
          if (!past || !Array.isArray(past[column]) || past[column].length === 0) return undefined;
          return past[column][past[column].length - 1];
        };
        const endpoints = group.endpoints || [];
        const rps = past ? last('rps') : endpoints.reduce((sum, e) => sum + (isNumber(e.rps) ? e.rps : 0), 0);
        setText(row.rps, fmtRps(rps));
        setText(row.errors, fmtRate(past ? last('error_rate') : null));
        setText(row.p99, fmtMs(past ? last('p99_ms') : null));
      }
      this.refreshEditor();
    }

    // The weights the inputs ask for, or an error message.
    editedWeights() {
      const weights = {};
      for (const [name, row] of this.groupRows) {
        const text = row.input.value.trim();
        if (!/^\d+$/.test(text)) return { error: `the weight of ${name} must be a whole number ≥ 0` };
        weights[name] = Number(text);
      }
      if (Object.values(weights).every((w) => w === 0)) return { error: 'at least one group needs a weight above 0' };
      return { weights };
    }

    refreshEditor() {
      const edited = this.dirty.size > 0;
      this.discardButton.disabled = this.busy || !edited;
      if (!edited) {
        this.applyButton.disabled = true;
        setText(this.editorHint, 'Edit a weight to change the split.');
        this.editorHint.classList.remove('bad');
        return;
      }
      const { weights, error } = this.editedWeights();
      this.applyButton.disabled = this.busy || Boolean(error);
      this.editorHint.classList.toggle('bad', Boolean(error));
      if (error) {
        setText(this.editorHint, error);
        return;
      }
      const total = Object.values(weights).reduce((a, b) => a + b, 0);
      setText(this.editorHint, 'New split: ' + Object.entries(weights)
        .map(([g, w]) => `${g} ${((w / total) * 100).toFixed(1)} %`).join(' · '));
    }

    discardEdits() {
      this.dirty.clear();
      for (const row of this.groupRows.values()) row.input.value = row.input.dataset.current || '';
      this.refreshEditor();
    }

    renderEndpoints(service) {
      const rows = [];
      for (const group of service.groups || []) {
        for (const endpoint of group.endpoints || []) rows.push({ group, endpoint });
      }
      const key = rows.map((r) => r.group.name + '/' + r.endpoint.address).join('\n');
      if (key !== this.endpointKey) {
        this.endpointKey = key;
        this.endpointCells = rows.map(({ group, endpoint }) => {
          const cells = {
            swatch: h('span', { class: 'swatch' }),
            health: h('span', { class: 'health' }),
            inFlight: h('td', { class: 'num' }),
            rps: h('td', { class: 'num' }),
            errors: h('td', { class: 'num' }),
            ewma: h('td', { class: 'num' }),
            p50: h('td', { class: 'num' }),
            p90: h('td', { class: 'num' }),
            p99: h('td', { class: 'num' }),
          };
          cells.element = h('tr', { dataset: { testid: `endpoint-${this.name}-${endpoint.address}` } },
            h('td', {}, cells.swatch, h('span', { class: 'mono' }, endpoint.address), h('span', { class: 'muted group-of' }, group.name)),
            h('td', {}, cells.health),
            cells.inFlight, cells.rps, cells.errors, cells.ewma, cells.p50, cells.p90, cells.p99);
          return cells;
        });
        this.endpointBody.replaceChildren(...this.endpointCells.map((c) => c.element));
      }
      rows.forEach(({ group, endpoint }, i) => {
        const cells = this.endpointCells[i];
        cells.swatch.style.background = groupColor(service, group.name);
        const healthy = endpoint.healthy;
        const health = healthy === true ? 'healthy' : healthy === false ? 'out' : 'unknown';
        cells.health.className = 'health ' + health;
        setText(cells.health, healthy === true ? 'healthy' : healthy === false ? 'out of rotation' : '—');
        setText(cells.inFlight, fmtCount(endpoint.in_flight));
        setText(cells.rps, fmtRps(endpoint.rps));
        // The recent error rate when the API gives it, else the count since start.
        if ('error_rate' in endpoint) {
          setText(cells.errors, fmtRate(endpoint.error_rate));
          cells.errors.title = `${fmtCount(endpoint.errors)} errors since start`;
        } else {
          setText(cells.errors, fmtCount(endpoint.errors));
        }
        setText(cells.ewma, fmtMs(endpoint.ewma_ms));
        setText(cells.p50, fmtMs(endpoint.p50_ms));
        setText(cells.p90, fmtMs(endpoint.p90_ms));
        setText(cells.p99, fmtMs(endpoint.p99_ms));
        cells.rps.title = `${fmtCount(endpoint.requests)} requests since start`;
      });
      if (rows.length === 0) {
        this.endpointBody.replaceChildren(h('tr', {}, h('td', { colspan: '9', class: 'muted' }, 'No endpoints.')));
        this.endpointKey = '';
      }
    }

    renderHistory(service, history) {
      if (!history) {
        const why = historyProblem || 'No history for this service yet.';
        for (const chart of this.charts) chart.showNote(why);
        this.distGrid.replaceChildren();
        this.distKey = '';
        this.distNote.hidden = false;
        setText(this.distNote, why);
        return;
      }
      // In the service's order (stable first), as the tables show them.
      const order = new Map((service.groups || []).map((g, i) => [g.name, i]));
      const rank = (name) => order.get(name) ?? order.size;
      const groups = (history.groups || []).slice().sort((a, b) => rank(a.name) - rank(b.name));
      const listed = new Map();
      for (const group of service.groups || []) {
        for (const endpoint of group.endpoints || []) listed.set(group.name + '/' + endpoint.address, listed.size);
      }
      const place = (e) => listed.get(e.group + '/' + e.address) ?? listed.size;
      const endpoints = (history.endpoints || []).slice().sort((a, b) => place(a) - place(b));
      for (const chart of this.charts) chart.update(service, groups);
      this.renderDistributions(service, endpoints);
    }

    renderDistributions(service, endpoints) {
      // One bucket range for every endpoint of the service, so the bars line
      // up: from the first to the last bucket any endpoint has requests in.
      let from = Infinity;
      let to = -1;
      for (const endpoint of endpoints) {
        (endpoint.distribution || []).forEach((bucket, i) => {
          if (bucket.count > 0) {
            from = Math.min(from, i);
            to = Math.max(to, i);
          }
        });
      }
      const anyTraffic = to >= 0;
      this.distNote.hidden = anyTraffic;
      setText(this.distNote, anyTraffic ? '' : 'No requests in the last 60 s.');
      if (!anyTraffic) {
        this.distGrid.replaceChildren();
        this.distKey = '';
        return;
      }
      const key = JSON.stringify([service.stable_group, (service.groups || []).map((g) => g.name), endpoints]);
      if (key === this.distKey) return; // unchanged: keep the bars (and any open tooltip)
      this.distKey = key;
      const length = Math.max(...endpoints.map((e) => (e.distribution || []).length));
      // At least 8 buckets, widened around the busy ones, for context.
      while (to - from + 1 < 8 && (from > 0 || to < length - 1)) {
        if (from > 0) from -= 1;
        if (to - from + 1 < 8 && to < length - 1) to += 1;
      }
      const figures = endpoints.map((endpoint) => {
        const buckets = endpoint.distribution || [];
        const total = buckets.reduce((sum, b) => sum + (b.count || 0), 0);
        const color = groupColor(service, endpoint.group);
        return h('figure', { class: 'dist', dataset: { testid: `dist-${this.name}-${endpoint.address}`, total: String(total) } },
          h('figcaption', {},
            h('span', { class: 'swatch' }),
            h('span', { class: 'mono' }, endpoint.address),
            h('span', { class: 'muted' }, ` ${endpoint.group} · ${fmtCount(total)} req`)),
          total ? distributionSvg(buckets, from, to, color) : h('p', { class: 'chart-note' }, 'No requests in the last 60 s.'));
      });
      figures.forEach((figure, i) => {
        figure.querySelector('.swatch').style.background = groupColor(service, endpoints[i].group);
      });
      this.distGrid.replaceChildren(...figures);
    }

    // --- actions

    setBusy(busy) {
      this.busy = busy;
      this.element.classList.toggle('busy', busy);
      if (this.service) this.update(this.service, historyOf(lastHistory, this.name));
    }

    showResult(kind, text) {
      this.banner.hidden = false;
      this.banner.dataset.kind = kind;
      this.banner.className = 'banner ' + kind;
      setText(this.bannerText, `${clock(new Date())} — ${text}`);
    }

    async act(label, method, path, body, describe) {
      this.setBusy(true);
      try {
        const service = await change(method, path, body);
        this.changedAt = ++changes;
        this.dirty.clear();
        if (service && Array.isArray(service.groups)) {
          this.service = service;
          this.showResult('ok', describe(service));
        } else {
          this.showResult('ok', `${label}: done.`);
        }
      } catch (error) {
        this.showResult('error', `${label} failed: ${error.message}`);
      } finally {
        this.setBusy(false);
      }
    }

    applyWeights() {
      const { weights, error } = this.editedWeights();
      if (error || this.busy) return;
      this.act('Set weights', 'PUT', `/api/v1/services/${encodeURIComponent(this.name)}/weights`, weights,
        (service) => `Weights of ${this.name} set: ${weightsText(service.groups)}.`);
    }

    async rollback() {
      const service = this.service;
      if (!service || this.busy) return;
      const stable = service.stable_group;
      const groups = service.groups || [];
      const stableGroup = groups.find((g) => g.name === stable);
      const stableAfter = stableGroup && stableGroup.weight > 0 ? stableGroup.weight : 100;
      const rows = groups.map((g) => {
        const after = g.name === stable ? stableAfter : 0;
        return h('li', {}, h('strong', {}, g.name), ` ${g.weight} → ${after}`,
          g.name === stable ? ' (all traffic)' : '');
      });
      const body = [
        h('p', {}, `Every group of ${this.name} but ${stable} goes to weight 0 at once:`),
        h('ul', { class: 'changes' }, rows),
        h('p', {}, 'The weights replaced are remembered (shown after the rollback). The override header no longer reaches the groups taken out until weights are set again.'),
      ];
      if (service.rollout && service.rollout.status === 'progressing') {
        body.push(h('p', { class: 'warn' }, `The running rollout of ${service.rollout.group} is stopped and marked rolled back; it will not start again by itself.`));
      }
      const ok = await confirmAction({ title: `Roll back ${this.name}?`, body, confirmLabel: 'Roll back', danger: true });
      if (!ok) return;
      await this.act('Roll back', 'POST', `/api/v1/services/${encodeURIComponent(this.name)}/rollback`, undefined,
        (after) => `Rolled back ${this.name}: ${weightsText(after.groups)}.`);
    }

    // The group promote picks without a body: the rollout group, else the
    // non-stable group with the most (config file) weight.
    defaultPromoteGroup(service) {
      const groups = service.groups || [];
      if (service.rollout && service.rollout.group) return service.rollout.group;
      const others = groups.filter((g) => g.name !== service.stable_group);
      others.sort((a, b) => (b.file_weight ?? b.weight ?? 0) - (a.file_weight ?? a.weight ?? 0));
      return others.length ? others[0].name : (groups[0] && groups[0].name);
    }

    async promote() {
      const service = this.service;
      if (!service || this.busy) return;
      const groups = service.groups || [];
      const select = h('select', { dataset: { testid: `promote-group-${this.name}` }, 'aria-label': 'group to promote' },
        groups.map((g) => h('option', { value: g.name }, g.name)));
      select.value = this.defaultPromoteGroup(service);
      const list = h('ul', { class: 'changes' });
      const describe = () => {
        list.replaceChildren(...groups.map((g) => {
          const after = g.name === select.value ? 100 : 0;
          return h('li', {}, h('strong', {}, g.name), ` ${g.weight} → ${after}`, after ? ' (all traffic)' : '');
        }));
      };
      select.addEventListener('change', describe);
      describe();
      const body = [
        h('p', {}, h('label', {}, 'Group to promote: ', select)),
        h('p', {}, `It gets weight 100 and every other group of ${this.name} 0, at once:`),
        list,
      ];
      if (service.rollout && service.rollout.status === 'progressing') {
        body.push(h('p', { class: 'warn' }, `The running rollout of ${service.rollout.group} is marked completed.`));
      }
      const ok = await confirmAction({ title: `Promote in ${this.name}?`, body, confirmLabel: 'Promote', danger: false });
      if (!ok) return;
      const group = select.value;
      await this.act('Promote', 'POST', `/api/v1/services/${encodeURIComponent(this.name)}/promote`, { group },
        (after) => `Promoted ${group} in ${this.name}: ${weightsText(after.groups)}.`);
    }

    async reset() {
      const service = this.service;
      if (!service || this.busy) return;
      const groups = service.groups || [];
      const body = [
        h('p', {}, `The runtime weights of ${this.name} (and the note of the last rollback) are dropped; the config file's weights apply again:`),
        h('ul', { class: 'changes' }, groups.map((g) => h('li', {}, h('strong', {}, g.name),
          ` ${g.weight} → ${isNumber(g.file_weight) ? g.file_weight : '?'}`))),
      ];
      if (service.rollout && service.rollout.status === 'progressing') {
        body.push(h('p', { class: 'warn' }, `The running rollout of ${service.rollout.group} stops.`));
      }
      const ok = await confirmAction({ title: `Reset ${this.name} to the file's weights?`, body, confirmLabel: 'Reset', danger: false });
      if (!ok) return;
      await this.act('Reset', 'DELETE', `/api/v1/services/${encodeURIComponent(this.name)}/weights`, undefined,
        (after) => `Weights of ${this.name} reset to the file's: ${weightsText(after.groups)}.`);
    }
  }

  // ------------------------------------------------------------------ polling

  function historyOf(history, name) {
    if (!history || !Array.isArray(history.services)) return null;
    return history.services.find((s) => s.name === name) || null;
  }

  function setRefreshState(state, text) {
    const box = document.getElementById('refresh-state');
    box.dataset.state = state;
    setText(document.getElementById('refresh-text'), text);
  }

  // `since`: the value of `changes` when the poll that read `services` began.
  function render(services, since) {
    const main = document.getElementById('services');
    const list = Array.isArray(services.services) ? services.services : [];
    const seen = new Set();
    const placeholder = document.getElementById('placeholder');
    if (placeholder) placeholder.hidden = list.length > 0;
    if (placeholder && list.length === 0) setText(placeholder, 'luas has no services.');
    let previous = placeholder;
    for (const service of list) {
      seen.add(service.name);
      let card = cards.get(service.name);
      if (!card) {
        card = new Card(service.name);
        cards.set(service.name, card);
      }
      // Keep the cards in the API's order.
      if (previous ? previous.nextElementSibling !== card.element : main.firstElementChild !== card.element) {
        if (previous) previous.after(card.element);
        else main.prepend(card.element);
      }
      previous = card.element;
      // Skip a card changed while this poll was on its way: it shows the
      // change's answer, newer than what the poll read.
      if (!card.busy && card.changedAt <= since) card.update(service, historyOf(lastHistory, service.name));
    }
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        for (const chart of card.charts) chart.destroy();
        card.element.remove();
        cards.delete(name);
      }
    }
    main.dataset.services = String(list.length);
  }

  async function poll() {
    timer = null;
    if (paused || polling) return;
    polling = true;
    const since = changes;
    try {
      const [services, history] = await Promise.all([
        request('GET', '/api/v1/services'),
        request('GET', '/api/v1/history').catch((error) => ({ error })),
      ]);
      if (history && history.error instanceof Error) {
        lastHistory = null;
        historyProblem = history.error.status === 404
          ? 'This luas has no /api/v1/history, so there are no charts.'
          : `The history could not be read: ${history.error.message}`;
      } else {
        lastHistory = history;
        historyProblem = null;
      }
      render(services, since);
      setRefreshState('live', `live · updated ${clock(new Date())}`);
    } catch (error) {
      setRefreshState('error', `cannot read luas (${error.message}); retrying`);
    } finally {
      polling = false;
    }
    if (!paused && !timer) timer = setTimeout(poll, POLL_MS);
  }

  function start() {
    document.getElementById('admin-host').textContent = location.host;
    setToken(getToken()); // shows "Forget token" when one is kept
    document.getElementById('forget-token').addEventListener('click', () => setToken(null));
    const pause = document.getElementById('pause');
    pause.addEventListener('click', () => {
      paused = !paused;
      setText(pause, paused ? 'Resume' : 'Pause');
      if (paused) {
        if (timer) clearTimeout(timer);
        timer = null;
        setRefreshState('paused', 'paused');
      } else {
        setRefreshState('connecting', 'resuming…');
        poll();
      }
    });
    poll();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
