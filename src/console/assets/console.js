// Keyboard use of the review queue and the decision page; every action is
// also a plain form that works without this script.
(function () {
  var rows = [].slice.call(document.querySelectorAll('.queue .item'));
  var at = 0;
  function select(i) {
    if (!rows.length) return;
    at = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, j) { r.classList.toggle('sel', j === at); });
    rows[at].focus();
  }
  function press(scope, key) {
    var b = scope.querySelector('button[data-key="' + key + '"]');
    if (b && !b.disabled) b.form.requestSubmit ? b.form.requestSubmit(b) : b.form.submit();
    return !!b;
  }
  // l: to the add-to-list control (a select), of the item or the page.
  function toList(scope, e) {
    var s = scope.querySelector('[data-hook="add-to-list"] select');
    if (s) { s.focus(); e.preventDefault(); }
  }
  document.addEventListener('keydown', function (e) {
    var t = e.target;
    // Enter on an add-to-list select adds (a select alone does not submit).
    if (e.key === 'Enter' && t.tagName === 'SELECT' && t.closest('[data-hook="add-to-list"]') && t.form) {
      t.form.requestSubmit ? t.form.requestSubmit() : t.form.submit(); e.preventDefault(); return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName)) return;
    var k = e.key;
    if (rows.length) {
      if (k === 'j') { select(at + 1); e.preventDefault(); return; }
      if (k === 'k') { select(at - 1); e.preventDefault(); return; }
      if (k === 'o' || (k === 'Enter' && t.classList.contains('item'))) {
        var a = rows[at].querySelector('a.open'); if (a) { location.href = a.href; e.preventDefault(); } return;
      }
      if (k === 'l') { toList(rows[at], e); return; }
      if ('adtb'.indexOf(k) >= 0 && press(rows[at], k)) e.preventDefault();
      return;
    }
    if (k === 'l') { toList(document, e); return; }
    if ('adc'.indexOf(k) >= 0 && press(document, k)) e.preventDefault();
  });
  rows.forEach(function (r, j) { r.addEventListener('focus', function () { at = j; rows.forEach(function (x, i) { x.classList.toggle('sel', i === j); }); }); });
  if (rows.length && !document.activeElement.closest('form')) select(0);
})();

// Rules draft editor: each rule checked as it is typed (the server compiles
// it, POST /console/rules/validate), the error shown next to the rule.
// Without script, saving the form checks it the same way.
(function () {
  var form = document.querySelector('form[data-validate]');
  if (!form || !window.fetch) return;
  var timer, asked = 0;
  function show(el, list) {
    if (!el) return;
    el.textContent = list.join(' · ');
    el.hidden = !list.length;
  }
  function check() {
    var mine = ++asked;
    fetch(form.getAttribute('data-validate'), {
      method: 'POST', credentials: 'same-origin', headers: { accept: 'application/json' },
      body: new URLSearchParams(new FormData(form)),
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (answer) {
      if (!answer || mine !== asked) return;
      var byRow = {};
      answer.rules.forEach(function (r) { byRow[r.row] = r; });
      [].forEach.call(form.querySelectorAll('[data-row]'), function (box) {
        var r = byRow[box.getAttribute('data-row')] || { errors: [], warnings: [] };
        show(box.querySelector('.rule-errors'), r.errors);
        show(box.querySelector('.rule-warnings'), r.warnings);
        box.classList.toggle('bad', r.errors.length > 0);
        var text = box.querySelector('textarea');
        if (text) text.setAttribute('aria-invalid', r.errors.length ? 'true' : 'false');
      });
      show(form.querySelector('.set-errors'), answer.errors);
    }).catch(function () {});
  }
  function soon() { clearTimeout(timer); timer = setTimeout(check, 300); }
  form.addEventListener('input', soon);
  form.addEventListener('change', soon);
})();
