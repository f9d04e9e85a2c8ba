// The new API key's Copy button: shown only where this script runs and the browser lets a page
// write to the clipboard (without it, the page says to select the key and copy it by hand).
(function () {
  'use strict';
  var button = document.querySelector('[data-copy-api-key]');
  var key = document.querySelector('[data-api-key]');
  var status = document.querySelector('[data-copy-api-key-status]');
  if (!button || !key || !status || !navigator.clipboard || !window.isSecureContext) return;
  button.hidden = false;
  button.addEventListener('click', function () {
    navigator.clipboard.writeText(key.textContent.trim()).then(
      function () {
        status.textContent = 'Copied.';
      },
      function () {
        status.textContent = 'The browser did not let the page copy it: select the key and copy it.';
      },
    );
  });
})();
