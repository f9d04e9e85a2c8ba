// Enhancements only: every page works without this file, and the server enforces every rule.
(function () {
  'use strict';

  // Move focus to the error summary so keyboard and screen-reader users hear what went wrong.
  var summary = document.querySelector('[data-error-summary]');
  if (summary) summary.focus();

  // A live countdown on the resend button; the server refuses early resends anyway.
  var seconds = document.querySelector('[data-cooldown-seconds]');
  var button = document.querySelector('button[data-cooldown]');
  if (!seconds || !button) return;
  var remaining = parseInt(button.getAttribute('data-cooldown') || '0', 10);
  if (!(remaining > 0)) return;
  var note = document.querySelector('[data-cooldown-note]');
  button.setAttribute('aria-disabled', 'true');
  button.addEventListener('click', function (event) {
    if (remaining > 0) event.preventDefault();
  });
  var timer = setInterval(function () {
    remaining -= 1;
    if (remaining > 0) {
      seconds.textContent = String(remaining);
      return;
    }
    clearInterval(timer);
    button.removeAttribute('aria-disabled');
    if (note) note.textContent = 'You can ask for a new code now.';
  }, 1000);
})();
