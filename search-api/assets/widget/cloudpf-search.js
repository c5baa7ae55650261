/*! cloudpf search widget v1. Served by the cloudpf search API at /widget/v1/cloudpf-search.js.
 *
 * One script tag turns an <input> into an as-you-type search box:
 *
 *   <input id="q" type="search">
 *   <div id="results"></div>
 *   <script src="https://search.example/widget/v1/cloudpf-search.js" defer
 *           data-tenant="alpine-outfitters" data-key="cpfs_…"
 *           data-input="#q" data-results="#results"></script>
 *
 * or from code: CloudpfSearch.attach(input, { tenant, key, results, productUrl }).
 * The key must be a search-scope key (it sits in the page); the page's origin must be
 * one of the tenant's `cors_origins`. No framework, no dependency, no global but
 * `CloudpfSearch`.
 */
(function () {
  'use strict';

  var script = document.currentScript;
  var scriptUrl = script && script.src ? new URL(script.src, location.href) : null;
  var DEFAULTS = {
    api: scriptUrl ? scriptUrl.origin : location.origin,
    size: 6,          // suggestions in the dropdown
    pageSize: 12,     // hits per results page
    delay: 120,       // ms of quiet typing before a request
    timeout: 4000,    // ms before a request counts as failed
    locale: undefined, // number formatting; the browser's by default
    productUrl: null   // product => URL of its page; without, results emit `cloudpf:open`
  };
  var instances = 0;

  // What a storefront can show a shopper when something went wrong; never the raw error.
  var MESSAGES = {
    offline: 'Search is not available right now. Please try again in a moment.',
    timeout: 'Search is taking too long. Please try again.',
    rejected: 'This search box is not set up correctly (the shop’s search key was refused).',
    limited: 'Too many searches at once. Please wait a moment.',
    invalid: 'That search could not be run. Try fewer or shorter words.'
  };

  function fold(text) {
    return text.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  }

  function words(text) {
    return fold(text).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  }

  // Fragments of `name` with the start of each word that a typed word begins marked:
  // what the shopper typed, shown in what they get.
  function markTyped(name, typed) {
    var terms = words(typed);
    var out = [];
    var re = /[\p{L}\p{N}]+/gu;
    var last = 0;
    var m;
    while ((m = re.exec(name)) !== null) {
      var word = m[0];
      var folded = fold(word);
      var best = 0;
      for (var i = 0; i < terms.length; i++) {
        if (folded.indexOf(terms[i]) === 0 && terms[i].length > best) best = terms[i].length;
      }
      if (!best) continue;
      // Count original characters until their folded form covers the typed prefix.
      var take = 0;
      var covered = 0;
      while (take < word.length && covered < best) {
        covered += fold(word[take]).length;
        take++;
      }
      if (m.index > last) out.push({ text: name.slice(last, m.index) });
      out.push({ text: word.slice(0, take), mark: true });
      last = m.index + take;
    }
    if (last < name.length) out.push({ text: name.slice(last) });
    return out;
  }

  // The API's highlights are HTML-escaped text with matches in <em>: read them as text
  // fragments, never as markup, so nothing a product record holds can run in the page.
  function fromHighlight(html) {
    var out = [];
    var parts = html.split(/(<em>|<\/em>)/);
    var marked = false;
    var scratch = document.createElement('textarea');
    for (var i = 0; i < parts.length; i++) {
      if (parts[i] === '<em>') { marked = true; continue; }
      if (parts[i] === '</em>') { marked = false; continue; }
      if (!parts[i]) continue;
      scratch.innerHTML = parts[i];
      out.push({ text: scratch.value, mark: marked });
    }
    return out;
  }

  function fragments(el, parts) {
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].mark) {
        var mark = document.createElement('mark');
        mark.textContent = parts[i].text;
        el.appendChild(mark);
      } else {
        el.appendChild(document.createTextNode(parts[i].text));
      }
    }
    return el;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function price(amount, currency, locale) {
    try {
      return new Intl.NumberFormat(locale, { style: 'currency', currency: currency }).format(Number(amount));
    } catch (e) {
      return amount + ' ' + currency;
    }
  }

  function failure(kind, status) {
    var error = new Error(MESSAGES[kind]);
    error.kind = kind;
    error.status = status;
    return error;
  }

  function SearchBox(input, options) {
    if (!(input instanceof HTMLInputElement)) throw new TypeError('CloudpfSearch.attach needs an <input>');
    if (!options || !options.tenant || !options.key) throw new TypeError('CloudpfSearch.attach needs a tenant and a search key');
    this.options = Object.assign({}, DEFAULTS, options);
    this.input = input;
    this.filters = {};
    this.results = typeof this.options.results === 'string' ? document.querySelector(this.options.results) : this.options.results || null;
    this.id = 'cpf-' + ++instances;
    this.suggestions = [];
    this.active = -1;
    this.seq = 0;           // the newest dropdown request; older answers are dropped
    this.searchSeq = 0;     // the same for full searches
    this.timer = null;
    this.inflight = null;
    this.lastResponse = null;
    this.build();
  }

  SearchBox.prototype.build = function () {
    var input = this.input;
    var list = (this.list = el('ul', 'cpf-listbox'));
    list.id = this.id + '-listbox';
    list.setAttribute('role', 'listbox');
    list.setAttribute('aria-label', 'Suggestions');
    list.hidden = true;
    var status = (this.status = el('div', 'cpf-visually-hidden'));
    status.setAttribute('role', 'status');
    status.setAttribute('aria-live', 'polite');
    input.insertAdjacentElement('afterend', list);
    list.insertAdjacentElement('afterend', status);
    input.setAttribute('role', 'combobox');
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-expanded', 'false');
    input.setAttribute('aria-controls', list.id);
    input.setAttribute('autocomplete', 'off');
    input.classList.add('cpf-input');
    if (this.results) {
      this.results.classList.add('cpf-results');
      this.results.setAttribute('aria-live', 'polite');
    }
    var self = this;
    this.handlers = {
      input: function () { self.schedule(); },
      keydown: function (e) { self.key(e); },
      blur: function () { setTimeout(function () { if (document.activeElement !== input) self.close(); }, 150); },
      focus: function () { if (self.suggestions.length && input.value.trim()) self.open(); }
    };
    // mousedown, not click: it fires before the input's blur closes the list.
    this.handlers.pick = function (e) {
      var option = e.target.closest('[role=option]');
      if (!option) return;
      e.preventDefault();
      self.choose(Number(option.getAttribute('data-index')));
    };
    Object.keys(this.handlers).forEach(function (name) {
      if (name !== 'pick') input.addEventListener(name, self.handlers[name]);
    });
    list.addEventListener('mousedown', this.handlers.pick);
  };

  SearchBox.prototype.destroy = function () {
    var self = this;
    clearTimeout(this.timer);
    if (this.inflight) this.inflight.abort();
    Object.keys(this.handlers).forEach(function (name) {
      if (name !== 'pick') self.input.removeEventListener(name, self.handlers[name]);
    });
    this.list.remove();
    this.status.remove();
    ['role', 'aria-autocomplete', 'aria-expanded', 'aria-controls', 'aria-activedescendant'].forEach(function (a) {
      self.input.removeAttribute(a);
    });
    if (this.results) this.results.textContent = '';
  };

  // GET an API path with the search key; resolves to the JSON body or rejects with an
  // Error whose `kind` says what a shopper should be told.
  SearchBox.prototype.get = function (path, params, signal) {
    var url = new URL(this.options.api.replace(/\/$/, '') + '/search/' + encodeURIComponent(this.options.tenant) + path);
    Object.keys(params).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== null && params[k] !== '') url.searchParams.set(k, params[k]);
    });
    var controller = new AbortController();
    var timedOut = false;
    var timer = setTimeout(function () { timedOut = true; controller.abort(); }, this.options.timeout);
    if (signal) signal.addEventListener('abort', function () { controller.abort(); });
    return fetch(url, { headers: { 'X-API-Key': this.options.key }, signal: controller.signal, credentials: 'omit' })
      .then(function (response) {
        if (response.ok) return response.json();
        if (response.status === 401 || response.status === 403) throw failure('rejected', response.status);
        if (response.status === 429) throw failure('limited', response.status);
        if (response.status === 400 || response.status === 422) throw failure('invalid', response.status);
        throw failure('offline', response.status);
      }, function (error) {
        if (timedOut) throw failure('timeout');
        if (error && error.name === 'AbortError') throw error;
        throw failure('offline');
      })
      .finally(function () { clearTimeout(timer); });
  };

  SearchBox.prototype.schedule = function () {
    var self = this;
    clearTimeout(this.timer);
    if (!this.input.value.trim()) {
      if (this.inflight) this.inflight.abort();
      this.suggestions = [];
      this.close();
      return;
    }
    this.timer = setTimeout(function () { self.suggest(); }, this.options.delay);
  };

  SearchBox.prototype.suggest = function () {
    var self = this;
    var q = this.input.value.trim();
    if (!q) return Promise.resolve();
    if (this.inflight) this.inflight.abort();
    var controller = (this.inflight = new AbortController());
    var seq = ++this.seq;
    return this.get('/autocomplete', { q: q, size: this.options.size }, controller.signal)
      .then(function (body) {
        if (seq !== self.seq) return;
        self.renderSuggestions(q, body.queries || [], body.suggestions || []);
      })
      .catch(function (error) {
        if (seq !== self.seq || (error && error.name === 'AbortError')) return;
        self.renderProblem(error);
      });
  };

  // The shop's popular searches first (a shortcut to a whole result list), then products.
  SearchBox.prototype.renderSuggestions = function (q, queries, suggestions) {
    var list = this.list;
    var options = this.options;
    this.suggestions = queries.map(function (p) { return { kind: 'query', text: p.text }; })
      .concat(suggestions.map(function (s) { return { kind: 'product', text: s.text, suggestion: s }; }));
    // Always offer the full search for what was typed, so Enter and a click do the same.
    this.suggestions.push({ kind: 'search', text: q });
    list.textContent = '';
    this.active = -1;
    this.input.removeAttribute('aria-activedescendant');
    for (var i = 0; i < this.suggestions.length; i++) {
      var item = this.suggestions[i];
      var li = el('li', 'cpf-option cpf-option-' + item.kind);
      li.id = this.id + '-option-' + i;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', 'false');
      li.setAttribute('data-index', String(i));
      if (item.kind === 'query') {
        fragments(li.appendChild(el('span', 'cpf-option-text')), markTyped(item.text, q));
        li.appendChild(el('span', 'cpf-option-price', 'popular search'));
      } else if (item.kind === 'product') {
        var s = item.suggestion;
        fragments(li.appendChild(el('span', 'cpf-option-text')), s.fuzzy ? [{ text: s.text }] : markTyped(s.text, q));
        li.appendChild(el('span', 'cpf-option-price', price(s.price, s.currency, options.locale)));
      } else {
        var label = li.appendChild(el('span', 'cpf-option-text', 'Search for '));
        label.appendChild(el('q', null, q));
      }
      list.appendChild(li);
    }
    var found = this.suggestions.length - 1;
    this.status.textContent = found ? found + (found === 1 ? ' suggestion' : ' suggestions') + '; use the arrow keys to choose.' : 'No suggestions.';
    this.open();
  };

  SearchBox.prototype.renderProblem = function (error) {
    this.suggestions = [];
    this.list.textContent = '';
    var li = el('li', 'cpf-problem', error.message || MESSAGES.offline);
    li.setAttribute('aria-disabled', 'true');
    this.list.appendChild(li);
    this.status.textContent = li.textContent;
    this.open();
    this.emit('error', { error: error });
  };

  SearchBox.prototype.open = function () {
    var input = this.input;
    var list = this.list;
    list.style.top = input.offsetTop + input.offsetHeight + 'px';
    list.style.left = input.offsetLeft + 'px';
    list.style.minWidth = input.offsetWidth + 'px';
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
  };

  SearchBox.prototype.close = function () {
    this.list.hidden = true;
    this.active = -1;
    this.input.setAttribute('aria-expanded', 'false');
    this.input.removeAttribute('aria-activedescendant');
  };

  SearchBox.prototype.move = function (step) {
    var n = this.suggestions.length;
    if (!n) return;
    if (this.list.hidden) this.open();
    var next = this.active + step;
    if (next < -1) next = n - 1;
    if (next >= n) next = -1;
    var previous = this.list.children[this.active];
    if (previous) previous.setAttribute('aria-selected', 'false');
    this.active = next;
    var option = this.list.children[next];
    if (option) {
      option.setAttribute('aria-selected', 'true');
      this.input.setAttribute('aria-activedescendant', option.id);
      option.scrollIntoView({ block: 'nearest' });
    } else {
      this.input.removeAttribute('aria-activedescendant');
    }
  };

  SearchBox.prototype.key = function (e) {
    switch (e.key) {
      case 'ArrowDown':
        e.preventDefault();
        this.move(1);
        break;
      case 'ArrowUp':
        e.preventDefault();
        this.move(-1);
        break;
      case 'Enter':
        e.preventDefault();
        if (this.active >= 0 && !this.list.hidden) this.choose(this.active);
        else this.submit(this.input.value);
        break;
      case 'Escape':
        if (!this.list.hidden) {
          e.preventDefault();
          this.close();
        } else if (this.input.value) {
          e.preventDefault();
          this.input.value = '';
          this.suggestions = [];
        }
        break;
      case 'Tab':
        this.close();
        break;
    }
  };

  SearchBox.prototype.choose = function (index) {
    var item = this.suggestions[index];
    if (!item) return;
    if (item.kind === 'product') {
      this.input.value = item.text;
      this.emit('select', { suggestion: item.suggestion, position: index + 1 });
    }
    this.submit(item.text);
  };

  SearchBox.prototype.submit = function (text) {
    clearTimeout(this.timer);
    this.seq++; // a suggestion request still running must not reopen the list
    if (this.inflight) this.inflight.abort();
    this.close();
    this.input.value = text;
    return this.search({ page: 1 });
  };

  // A full product search for what is in the input, with `filters` and `extra` (page,
  // sort…): renders into the results element if there is one and emits `cloudpf:results`.
  // Resolves to the response, or to null when it failed or was overtaken.
  SearchBox.prototype.search = function (extra) {
    var self = this;
    var params = Object.assign({ q: this.input.value.trim(), size: this.options.pageSize }, this.filters, extra || {});
    var seq = ++this.searchSeq;
    if (this.results) this.results.setAttribute('aria-busy', 'true');
    return this.get('/products', params)
      .then(function (body) {
        if (seq !== self.searchSeq) return null;
        self.lastResponse = body;
        // A first page names its search; later pages click within the same one.
        if (body.query_id) self.lastSearch = { id: body.query_id, q: params.q };
        else if (!params.q) self.lastSearch = null;
        if (self.results) self.renderResults(params, body);
        self.emit('results', { params: params, response: body });
        return body;
      })
      .catch(function (error) {
        if (seq !== self.searchSeq) return null;
        if (self.results) {
          self.results.textContent = '';
          self.results.appendChild(el('p', 'cpf-problem', error.message || MESSAGES.offline));
        }
        self.emit('error', { error: error, params: params });
        return null;
      })
      .finally(function () {
        if (self.results && seq === self.searchSeq) self.results.removeAttribute('aria-busy');
      });
  };

  SearchBox.prototype.renderResults = function (params, body) {
    var self = this;
    var root = this.results;
    var options = this.options;
    root.textContent = '';
    var summary = root.appendChild(el('p', 'cpf-summary'));
    if (!body.hits.length) {
      summary.appendChild(document.createTextNode(params.q ? 'No products match ' : 'No products match these filters.'));
      if (params.q) summary.appendChild(el('q', null, params.q));
      if (body.did_you_mean) {
        var dym = root.appendChild(el('p', 'cpf-did-you-mean', 'Did you mean '));
        var fix = dym.appendChild(el('button', 'cpf-link', body.did_you_mean));
        fix.type = 'button';
        fix.addEventListener('click', function () { self.submit(body.did_you_mean); });
        dym.appendChild(document.createTextNode('?'));
      }
      if (params.q) this.nearest(params.q, root);
      return;
    }
    var count = (body.total_is_estimate ? 'More than ' : '') + body.total.toLocaleString(options.locale);
    summary.textContent = count + (body.total === 1 ? ' product' : ' products') + (params.q ? ' for ' : '');
    if (params.q) summary.appendChild(el('q', null, params.q));
    var list = root.appendChild(el('ol', 'cpf-hits'));
    body.hits.forEach(function (hit, i) {
      var p = hit.product;
      var li = list.appendChild(el('li', 'cpf-hit'));
      li.setAttribute('data-product-id', p.product_id);
      li.setAttribute('data-position', String((body.page - 1) * body.size + i + 1));
      var position = (body.page - 1) * body.size + i + 1;
      var name = li.appendChild(el('h3', 'cpf-hit-name'));
      var url = options.productUrl ? options.productUrl(p) : null;
      var open = name.appendChild(el(url ? 'a' : 'button', 'cpf-hit-link'));
      if (url) open.href = url;
      else open.type = 'button';
      fragments(open, hit.highlights && hit.highlights.name ? fromHighlight(hit.highlights.name) : [{ text: p.name }]);
      open.addEventListener('click', function () {
        self.reportClick(p.product_id, position);
        self.emit('open', { product: p, position: position });
      });
      var meta = li.appendChild(el('p', 'cpf-hit-meta'));
      meta.appendChild(el('span', 'cpf-hit-price', price(p.price, p.currency, options.locale)));
      meta.appendChild(el('span', 'cpf-hit-category', p.category));
      if (p.brand) meta.appendChild(el('span', 'cpf-hit-brand', p.brand));
      if (p.stock <= 0) meta.appendChild(el('span', 'cpf-hit-stock', 'Sold out'));
      if (hit.highlights && hit.highlights.description) {
        fragments(li.appendChild(el('p', 'cpf-hit-description')), fromHighlight(hit.highlights.description));
      }
    });
    this.pager(params, body, root);
  };

  SearchBox.prototype.pager = function (params, body, root) {
    var self = this;
    var pages = Math.ceil(body.total / body.size);
    if (pages <= 1) return;
    var nav = root.appendChild(el('nav', 'cpf-pager'));
    nav.setAttribute('aria-label', 'Result pages');
    var button = function (label, page, disabled) {
      var b = nav.appendChild(el('button', 'cpf-page', label));
      b.type = 'button';
      b.disabled = disabled;
      b.addEventListener('click', function () { self.search({ page: page }); });
      return b;
    };
    button('Previous', body.page - 1, body.page <= 1);
    nav.appendChild(el('span', 'cpf-page-number', 'Page ' + body.page + (body.total_is_estimate ? '' : ' of ' + pages)));
    button('Next', body.page + 1, body.page >= pages);
  };

  // With nothing found, what is closest to what was typed (typo-tolerant suggestions).
  SearchBox.prototype.nearest = function (q, root) {
    var self = this;
    var seq = this.searchSeq;
    return this.get('/autocomplete', { q: q, size: 4 })
      .then(function (body) {
        if (seq !== self.searchSeq || !body.suggestions.length) return;
        var p = root.appendChild(el('p', 'cpf-nearest', 'Closest products: '));
        body.suggestions.forEach(function (s, i) {
          if (i) p.appendChild(document.createTextNode(', '));
          var b = p.appendChild(el('button', 'cpf-link', s.text));
          b.type = 'button';
          b.addEventListener('click', function () { self.submit(s.text); });
        });
      })
      .catch(function () { /* the empty-result message already stands */ });
  };

  // Tells the shop's search analytics which result of which search was opened. Best
  // effort: it never delays the page (keepalive survives a navigation) or shows errors.
  SearchBox.prototype.reportClick = function (productId, position) {
    var search = this.lastSearch;
    if (!search) return;
    try {
      fetch(this.options.api.replace(/\/$/, '') + '/events/' + encodeURIComponent(this.options.tenant), {
        method: 'POST',
        keepalive: true,
        credentials: 'omit',
        headers: { 'X-API-Key': this.options.key, 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'click', query_id: search.id, query: search.q, product_id: productId, position: position })
      }).catch(function () {});
    } catch (e) { /* an old browser without keepalive: no click report */ }
  };

  SearchBox.prototype.emit = function (name, detail) {
    this.input.dispatchEvent(new CustomEvent('cloudpf:' + name, { detail: detail, bubbles: true }));
  };

  function ensureStylesheet() {
    if (!scriptUrl || (script && script.getAttribute('data-css') === 'false')) return;
    var href = new URL('cloudpf-search.css', scriptUrl).href;
    var links = document.querySelectorAll('link[rel=stylesheet]');
    for (var i = 0; i < links.length; i++) if (links[i].href === href) return;
    var link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    document.head.appendChild(link);
  }

  var api = {
    version: '1',
    attach: function (input, options) {
      var target = typeof input === 'string' ? document.querySelector(input) : input;
      return new SearchBox(target, options);
    },
    // Exposed for tests and for pages that render their own dropdown.
    markTyped: markTyped,
    fromHighlight: fromHighlight
  };
  window.CloudpfSearch = api;

  function autoAttach() {
    ensureStylesheet();
    if (!script || !script.dataset.input) return;
    var input = document.querySelector(script.dataset.input);
    if (!input) {
      console.warn('cloudpf search: no element matches data-input ' + script.dataset.input);
      return;
    }
    api.attach(input, {
      tenant: script.dataset.tenant,
      key: script.dataset.key,
      results: script.dataset.results || null
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', autoAttach);
  else autoAttach();
})();
