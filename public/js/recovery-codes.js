// The recovery codes page's Print button: shown only where this script runs (without it, the page
// says to use the browser's own Print command; the print stylesheet prints the codes alone).
(function () {
  'use strict';
  var button = document.querySelector('[data-print]');
  if (!button || typeof window.print !== 'function') return;
  button.hidden = false;
  button.addEventListener('click', function () {
    window.print();
  });
})();
