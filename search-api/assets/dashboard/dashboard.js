// The shop's analytics dashboard: every figure comes from the API's reports
// (POST /analytics/{tenant}/report). The shop signs in with its admin key, which is
// traded at once for a token that ends within the hour (POST /auth/{tenant}/tokens);
// only the token lives in this tab's session storage, and it travels in the X-API-Key
// header only.
(function () {
  'use strict';
  var STORE = 'cloudpf.dashboard';
  var $ = function (id) { return document.getElementById(id); };
  var session = null;
  var currency = null;
  var chart = null;
  var lastTables = {};
  var MONEY = { revenue: true, order_value: true, average_order_value: true, unit_price: true };
  var PERCENT = { click_through_rate: true };
  var REPORTS = ['top_products', 'by_category', 'by_status', 'by_country', 'by_payment_method', 'rfm',
    'top_queries', 'no_result_queries', 'search_clicks', 'click_positions'];
  // Reports of the search log: no status, country or category.
  var SEARCH = { top_queries: true, no_result_queries: true, search_clicks: true, click_positions: true };
  var LIMITS = { rfm: 1000, click_positions: 20 };
  var WITH_CATEGORY = { top_products: true, by_category: true };
  var SEGMENTS = {
    champions: 'Champions', loyal: 'Loyal', new: 'New', at_risk: 'At risk',
    hibernating: 'Hibernating', needs_attention: 'Needs attention'
  };

  try { session = JSON.parse(sessionStorage.getItem(STORE) || 'null'); } catch (e) { session = null; }

  function fail(status, message) {
    var error = new Error(message);
    error.status = status;
    return error;
  }

  // One API call with the session's key; rejects with the API's own message.
  function call(method, path, body) {
    var headers = { 'X-API-Key': session.key };
    if (body) headers['Content-Type'] = 'application/json';
    return fetch(path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined, credentials: 'omit' })
      .then(function (response) {
        if (response.ok) return response;
        return response.json().then(
          function (b) { throw fail(response.status, (b && b.error && b.error.message) || 'HTTP ' + response.status); },
          function () { throw fail(response.status, 'The API answered HTTP ' + response.status + '.'); });
      }, function () {
        throw fail(0, 'The API cannot be reached. Check your connection and try again.');
      });
  }

  function base() { return '/analytics/' + encodeURIComponent(session.tenant); }

  function report(name, from, to, extra) {
    var filters = {};
    if (!SEARCH[name] && $('status').value) filters.status = $('status').value;
    if (!SEARCH[name] && $('country').value.trim()) filters.country = $('country').value.trim();
    if (WITH_CATEGORY[name] && $('category').value.trim()) filters.category = $('category').value.trim();
    var spec = Object.assign({ report: name, from: from, to: to, filters: filters }, extra || {});
    return call('POST', base() + '/report', spec);
  }

  // The API runs at most two reports of a shop at once (more get 429), so the page
  // queues its reports two at a time, and waits and retries a 429 a few times.
  var running = 0;
  var waiting = [];
  function queued(task) {
    return new Promise(function (resolve, reject) {
      waiting.push(function () {
        running++;
        task().then(resolve, reject).finally(function () {
          running--;
          if (waiting.length) waiting.shift()();
        });
      });
      if (running < 2) waiting.shift()();
    });
  }

  function retrying(task, attempt) {
    return task().catch(function (error) {
      if (error.status !== 429 || attempt >= 5) throw error;
      return new Promise(function (r) { setTimeout(r, 300 * (attempt + 1)); }).then(function () {
        return retrying(task, attempt + 1);
      });
    });
  }

  function json(name, from, to, extra) {
    return queued(function () {
      return retrying(function () {
        return report(name, from, to, extra).then(function (r) { return r.json(); });
      }, 0);
    });
  }

  function money(value) {
    var n = Number(value);
    if (!currency) return n.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency }).format(n);
    } catch (e) {
      return n.toFixed(2) + ' ' + currency;
    }
  }

  function number(value) { return Number(value).toLocaleString(); }

  function cell(column, value) {
    if (value === null || value === undefined) return '–';
    if (MONEY[column]) return money(value);
    if (PERCENT[column]) return (Number(value) * 100).toFixed(1) + ' %';
    if (/^-?\d+$/.test(value)) return number(value);
    if (column === 'segment') return SEGMENTS[value] || value;
    return value;
  }

  function iso(date) { return date.toISOString().slice(0, 10); }

  function addDays(text, days) {
    var d = new Date(text + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() + days);
    return iso(d);
  }

  function days(from, to) {
    return Math.round((Date.parse(to + 'T00:00:00Z') - Date.parse(from + 'T00:00:00Z')) / 86400000) + 1;
  }

  function showError(text) {
    $('error').textContent = text;
    $('error').hidden = !text;
  }

  function signOut(message) {
    sessionStorage.removeItem(STORE);
    session = null;
    currency = null;
    $('board').hidden = true;
    $('who').hidden = $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    $('key').value = '';
    $('sign-in-error').textContent = message || '';
    $('sign-in-error').hidden = !message;
  }

  // The shop's currency, from its latest purchase (reports add amounts, not currencies).
  function learnCurrency() {
    return call('GET', '/search/' + encodeURIComponent(session.tenant) + '/purchases?size=1')
      .then(function (r) { return r.json(); })
      .then(function (body) { currency = body.hits.length ? body.hits[0].currency : null; });
  }

  function open() {
    $('sign-in').hidden = true;
    $('who').textContent = session.tenant;
    $('who').hidden = $('sign-out').hidden = false;
    $('board').hidden = false;
    if (!$('from').value) preset(30);
    return learnCurrency().then(load, handle);
  }

  function handle(error) {
    if (error.status === 401 && session && session.expires_at) {
      signOut('Your session has ended (' + error.message + '). Sign in again.');
    } else if (error.status === 401 || error.status === 403) {
      signOut('The shop id or key was refused: ' + error.message);
    } else {
      showError(error.message);
    }
  }

  function preset(n) {
    var to = iso(new Date());
    $('to').value = to;
    $('from').value = addDays(to, 1 - n);
    $('granularity').value = n > 120 ? 'week' : 'day';
  }

  function load() {
    var from = $('from').value;
    var to = $('to').value;
    if (!from || !to || from > to) {
      showError('Choose a start date on or before the end date.');
      return Promise.resolve();
    }
    showError('');
    var span = days(from, to);
    var prevTo = addDays(from, -1);
    var prevFrom = addDays(prevTo, 1 - span);
    document.body.setAttribute('aria-busy', 'true');
    var granularity = $('granularity').value;
    var work = [
      Promise.all([json('summary', from, to), json('summary', prevFrom, prevTo)]).then(function (s) {
        kpis(s[0], s[1], span);
      }),
      json('timeseries', from, to, { granularity: granularity }).then(function (t) {
        lastTables.timeseries = t;
        drawChart(t, from, to, granularity);
      })
    ].concat(REPORTS.map(function (name) {
      var extra = name === 'search_clicks' ? {} : { limit: LIMITS[name] || 10 };
      return json(name, from, to, extra).then(function (t) {
        lastTables[name] = t;
        if (name === 'rfm') segments(t);
        else table(document.querySelector('[data-report=' + name + ']'), t);
      });
    }));
    return Promise.all(work).then(function () {
      document.body.setAttribute('data-loaded', from + '/' + to);
    }, handle).finally(function () {
      document.body.removeAttribute('aria-busy');
    });
  }

  function kpis(now, before, span) {
    var cols = now.columns;
    var row = now.rows[0] || [];
    var prev = before.rows[0] || [];
    document.querySelectorAll('.kpi').forEach(function (card) {
      var name = card.getAttribute('data-kpi');
      var i = cols.indexOf(name);
      var value = row[i] || '0';
      var old = prev[i] || '0';
      var out = card.querySelector('.value');
      out.textContent = MONEY[name] ? money(value) : number(value);
      out.setAttribute('data-value', value);
      var change = card.querySelector('.change');
      var a = Number(value);
      var b = Number(old);
      change.className = 'change';
      if (b === 0) {
        change.textContent = a === 0 ? 'no change' : 'new vs previous ' + span + ' days';
      } else {
        var pct = ((a - b) / b) * 100;
        change.classList.add(pct >= 0 ? 'up' : 'down');
        change.textContent = (pct >= 0 ? '▲ ' : '▼ ') + Math.abs(pct).toFixed(1) + ' % vs previous ' + span + ' days';
      }
      change.setAttribute('data-previous', old);
    });
  }

  // Every period of the range, so days without orders show as zero rather than a gap.
  function periods(from, to, granularity) {
    var out = [];
    var d = new Date(from + 'T00:00:00Z');
    if (granularity === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
    if (granularity === 'month') d.setUTCDate(1);
    var end = new Date(to + 'T00:00:00Z');
    while (d <= end && out.length < 400) {
      out.push(granularity === 'month' ? iso(d).slice(0, 7) : iso(d));
      if (granularity === 'month') d.setUTCMonth(d.getUTCMonth() + 1);
      else d.setUTCDate(d.getUTCDate() + (granularity === 'week' ? 7 : 1));
    }
    return out;
  }

  function drawChart(t, from, to, granularity) {
    var iPeriod = t.columns.indexOf('period');
    var iOrders = t.columns.indexOf('orders');
    var iRevenue = t.columns.indexOf('revenue');
    var byPeriod = {};
    t.rows.forEach(function (r) { byPeriod[r[iPeriod]] = r; });
    var xs = [];
    var revenue = [];
    var orders = [];
    periods(from, to, granularity).forEach(function (p) {
      var r = byPeriod[p];
      xs.push(Date.parse((p.length === 7 ? p + '-01' : p) + 'T00:00:00Z') / 1000);
      revenue.push(r ? Number(r[iRevenue]) : 0);
      orders.push(r ? Number(r[iOrders]) : 0);
    });
    var root = $('chart');
    root.setAttribute('data-points', String(xs.length));
    var width = Math.max(280, root.clientWidth);
    var options = {
      width: width,
      height: 280,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'); },
      scales: { x: { time: true }, money: {}, orders: {} },
      series: [
        {},
        { label: 'Revenue', scale: 'money', stroke: '#1b5fd1', fill: 'rgba(27,95,209,.08)', width: 2, value: function (u, v) { return v === null ? '–' : money(v); } },
        { label: 'Orders', scale: 'orders', stroke: '#d1731b', width: 2, value: function (u, v) { return v === null ? '–' : number(v); } }
      ],
      axes: [
        {},
        { scale: 'money', size: 70, values: function (u, vals) { return vals.map(function (v) { return money(v).replace(/\.00$/, ''); }); } },
        { scale: 'orders', side: 1, grid: { show: false } }
      ]
    };
    if (chart) chart.destroy();
    root.textContent = '';
    chart = new uPlot(options, [xs, revenue, orders], root);
  }

  function table(section, t, barColumn) {
    var holder = section.querySelector('.table');
    holder.textContent = '';
    if (!t.rows.length) {
      holder.appendChild(document.createElement('p')).textContent = 'Nothing in this range.';
      return;
    }
    var bar = barColumn || section.getAttribute('data-bar');
    var iBar = t.columns.indexOf(bar);
    var max = 0;
    t.rows.forEach(function (r) { max = Math.max(max, Number(r[iBar]) || 0); });
    var tableEl = holder.appendChild(document.createElement('table'));
    var head = tableEl.createTHead().insertRow();
    t.columns.forEach(function (c) {
      var th = document.createElement('th');
      th.scope = 'col';
      th.textContent = c.replace(/_/g, ' ');
      head.appendChild(th);
    });
    var body = tableEl.createTBody();
    t.rows.forEach(function (r) {
      var tr = body.insertRow();
      r.forEach(function (v, i) {
        var td = tr.insertCell();
        td.textContent = cell(t.columns[i], v);
        if (v !== null && /^-?\d+(\.\d+)?$/.test(v)) td.className = 'num';
        if (i === iBar && max > 0) {
          var b = td.appendChild(document.createElement('span'));
          b.className = 'meter';
          b.style.width = ((Number(v) / max) * 100).toFixed(1) + '%';
        }
      });
    });
  }

  function segments(t) {
    var iSegment = t.columns.indexOf('segment');
    var iRevenue = t.columns.indexOf('revenue');
    var counts = {};
    t.rows.forEach(function (r) {
      var s = r[iSegment];
      counts[s] = counts[s] || { customers: 0, revenue: 0 };
      counts[s].customers += 1;
      counts[s].revenue += Number(r[iRevenue]);
    });
    var rows = Object.keys(counts).sort(function (a, b) { return counts[b].customers - counts[a].customers; })
      .map(function (s) { return [s, String(counts[s].customers), counts[s].revenue.toFixed(2)]; });
    var section = document.querySelector('[data-report=rfm]');
    table(section, { columns: ['segment', 'customers', 'revenue'], rows: rows }, 'customers');
    section.querySelector('.note').textContent = t.rows.length >= 1000
      ? 'Over the 1,000 customers with the most revenue; the CSV lists them.'
      : 'Every customer with an order in the range; the CSV lists them with their scores.';
  }

  function download(name) {
    var from = $('from').value;
    var to = $('to').value;
    var extra = { format: 'csv' };
    if (name !== 'search_clicks') extra.limit = 1000;
    if (name === 'timeseries') extra.granularity = $('granularity').value;
    queued(function () { return retrying(function () { return report(name, from, to, extra); }, 0); })
      .then(function (r) { return r.blob(); })
      .then(function (blob) {
        var a = document.createElement('a');
        a.href = URL.createObjectURL(blob);
        a.download = session.tenant + '-' + name + '-' + from + '-' + to + '.csv';
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      })
      .catch(handle);
  }

  // The admin key is traded for a token that ends within the hour; only the token is
  // kept (in this tab). A server that mints no tokens keeps the key instead.
  $('sign-in').addEventListener('submit', function (e) {
    e.preventDefault();
    var adminKey = $('key').value.trim();
    session = { tenant: $('tenant').value.trim(), key: adminKey };
    call('POST', '/auth/' + encodeURIComponent(session.tenant) + '/tokens', { scope: 'admin', ttl_seconds: 3600 })
      .then(function (r) { return r.json(); }, function (error) {
        if (error.status === 503) return null;
        throw error;
      })
      .then(function (minted) {
        if (minted) session = { tenant: session.tenant, key: minted.token, expires_at: minted.expires_at };
        adminKey = null;
        sessionStorage.setItem(STORE, JSON.stringify(session));
        $('key').value = '';
        $('sign-in-error').hidden = true;
        return open();
      })
      .catch(function (error) {
        session = null;
        $('sign-in-error').textContent = error.status === 401 || error.status === 403
          ? 'The shop id or key was refused: ' + error.message
          : error.message;
        $('sign-in-error').hidden = false;
      });
  });
  $('sign-out').addEventListener('click', function () { signOut(''); });
  $('controls').addEventListener('submit', function (e) { e.preventDefault(); load(); });
  document.querySelectorAll('.presets button').forEach(function (b) {
    b.addEventListener('click', function () { preset(Number(b.getAttribute('data-days'))); load(); });
  });
  document.querySelectorAll('[data-report] .csv').forEach(function (b) {
    b.addEventListener('click', function () { download(b.closest('[data-report]').getAttribute('data-report')); });
  });
  window.addEventListener('resize', function () {
    if (chart) chart.setSize({ width: Math.max(280, $('chart').clientWidth), height: 280 });
  });

  if (session && session.tenant && session.key) open();
  else signOut('');
})();
