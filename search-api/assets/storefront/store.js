// The demo storefront: one page per shop around the cloudpf widget, adding what a shop's
// own page would (facets, price filter, sort). All searching goes through the widget.
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var shops = JSON.parse($('shops').textContent || '[]');
  var input = $('q');
  var box = null;

  // A shop entered by hand lives in this tab only.
  var own = sessionStorage.getItem('cloudpf.storefront.shop');
  if (own) {
    try { shops.push(JSON.parse(own)); } catch (e) { sessionStorage.removeItem('cloudpf.storefront.shop'); }
  }

  function fillPicker() {
    var picker = $('shop');
    picker.textContent = '';
    shops.forEach(function (s, i) {
      var o = document.createElement('option');
      o.value = String(i);
      o.textContent = s.tenant;
      picker.appendChild(o);
    });
    var wanted = new URLSearchParams(location.search).get('shop');
    var index = shops.findIndex(function (s) { return s.tenant === wanted; });
    picker.value = String(index >= 0 ? index : 0);
    picker.parentElement.hidden = shops.length === 0;
    $('connect').hidden = shops.length > 0;
  }

  function facet(listId, name, values) {
    var list = $(listId);
    list.textContent = '';
    var selected = box.filters[name];
    values.forEach(function (v) {
      var li = list.appendChild(document.createElement('li'));
      var b = li.appendChild(document.createElement('button'));
      b.type = 'button';
      b.className = 'facet-value';
      b.setAttribute('data-value', v.value);
      b.setAttribute('aria-pressed', String(selected === v.value));
      b.appendChild(document.createTextNode(v.value + ' '));
      var count = b.appendChild(document.createElement('span'));
      count.className = 'count';
      count.textContent = v.count;
      b.addEventListener('click', function () {
        if (box.filters[name] === v.value) delete box.filters[name];
        else box.filters[name] = v.value;
        box.search({ page: 1 });
      });
    });
    if (!values.length) list.appendChild(document.createElement('li')).textContent = '—';
  }

  function open(index) {
    if (box) box.destroy();
    var shop = shops[index];
    if (!shop) return;
    box = CloudpfSearch.attach(input, { tenant: shop.tenant, key: shop.search_key, results: '#results' });
    $('sort').value = 'relevance';
    $('min-price').value = $('max-price').value = '';
    $('in-stock').checked = false;
    input.value = '';
    var url = new URL(location.href);
    url.searchParams.set('shop', shop.tenant);
    history.replaceState(null, '', url);
    box.search({ page: 1 });
  }

  input.addEventListener('cloudpf:results', function (e) {
    var facets = e.detail.response.facets;
    facet('facet-category', 'category', facets.category);
    facet('facet-brand', 'brand', facets.brand);
  });
  // A shop's product page would open here; the demo shows the product in a dialog.
  input.addEventListener('cloudpf:open', function (e) {
    var p = e.detail.product;
    $('product-name').textContent = p.name;
    $('product-price').textContent = new Intl.NumberFormat(undefined, { style: 'currency', currency: p.currency }).format(Number(p.price));
    $('product-category').textContent = p.category;
    $('product-brand').textContent = p.brand || '';
    $('product-stock').textContent = p.stock > 0 ? p.stock + ' in stock' : 'sold out';
    $('product-description').textContent = p.description || '';
    $('product').showModal();
  });
  $('shop').addEventListener('change', function (e) { open(Number(e.target.value)); });
  $('sort').addEventListener('change', function (e) {
    box.filters.sort = e.target.value;
    box.search({ page: 1 });
  });
  $('in-stock').addEventListener('change', function (e) {
    if (e.target.checked) box.filters.in_stock = 'true';
    else delete box.filters.in_stock;
    box.search({ page: 1 });
  });
  $('price').addEventListener('submit', function (e) {
    e.preventDefault();
    box.filters.min_price = $('min-price').value.trim() || undefined;
    box.filters.max_price = $('max-price').value.trim() || undefined;
    box.search({ page: 1 });
  });
  $('clear').addEventListener('click', function () {
    box.filters = {};
    $('sort').value = 'relevance';
    $('min-price').value = $('max-price').value = '';
    $('in-stock').checked = false;
    box.search({ page: 1 });
  });
  $('connect').addEventListener('submit', function (e) {
    e.preventDefault();
    var shop = { tenant: $('connect-tenant').value.trim(), search_key: $('connect-key').value.trim() };
    sessionStorage.setItem('cloudpf.storefront.shop', JSON.stringify(shop));
    shops.push(shop);
    fillPicker();
    $('shop').value = String(shops.length - 1);
    open(shops.length - 1);
  });

  fillPicker();
  if (shops.length) open(Number($('shop').value));
})();
