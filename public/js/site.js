// Enhancements only: every page works without this file, and the server enforces every rule.
(function () {
  'use strict';

  // Move focus to the error summary's heading, which reads the first problem, so keyboard and
  // screen-reader users hear at once what went wrong.
  var summary = document.querySelector('[data-error-summary]');
  if (summary) summary.focus();

  // Times in the browser's own time zone, in the shape the server wrote them in UTC
  // ("Sat, 21 Nov 2026, 11:15 CET"); the exact time stays in the datetime attribute.
  Array.prototype.forEach.call(document.querySelectorAll('time[data-local-time]'), function (element) {
    var when = new Date(element.getAttribute('datetime'));
    if (isNaN(when.getTime())) return;
    var shape = element.getAttribute('data-local-time') || 'long';
    try {
      var text = new Intl.DateTimeFormat('en-GB', {
        weekday: shape.indexOf('short') === 0 ? undefined : 'short',
        day: 'numeric',
        month: 'short',
        year: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        second: shape.indexOf('seconds') > 0 ? '2-digit' : undefined,
        timeZoneName: 'short',
      }).format(when);
      element.textContent = text;
    } catch (error) {
      // An old browser without these options: the UTC time stays.
    }
  });

  // WebOTP: where the browser offers it, the code from an SMS ending "@this-host #123456" fills the
  // code field (after the person allows it) and is sent. Elsewhere nothing changes.
  var codeInput = document.querySelector('input[autocomplete="one-time-code"]');
  if (codeInput && codeInput.form && 'OTPCredential' in window && navigator.credentials) {
    var codeForm = codeInput.form;
    var waiting = new AbortController();
    // Typing the code and sending it first ends the wait for the SMS.
    codeForm.addEventListener('submit', function () {
      waiting.abort();
    });
    navigator.credentials
      .get({ otp: { transport: ['sms'] }, signal: waiting.signal })
      .then(function (otp) {
        if (!otp || !otp.code) return;
        codeInput.value = otp.code;
        if (codeForm.requestSubmit) codeForm.requestSubmit();
        else codeForm.submit();
      })
      .catch(function () {
        // No SMS came, the person declined, or the page moved on: the field stays as it is.
      });
  }

  // A live countdown on the buttons that send a new code; the server refuses early resends anyway.
  var seconds = document.querySelector('[data-cooldown-seconds]');
  var note = document.querySelector('[data-cooldown-note]');
  var buttons = Array.prototype.slice.call(document.querySelectorAll('button[data-cooldown]'));
  if (!seconds || !note || buttons.length === 0) return;
  var remaining = parseInt(buttons[0].getAttribute('data-cooldown') || '0', 10);
  if (!(remaining > 0)) return;

  // Said once when the wait is over, rather than every second.
  var status = document.createElement('p');
  status.className = 'visually-hidden';
  status.setAttribute('role', 'status');
  note.parentNode.insertBefore(status, note.nextSibling);

  buttons.forEach(function (button) {
    button.setAttribute('aria-disabled', 'true');
    button.addEventListener('click', function (event) {
      if (remaining > 0) event.preventDefault();
    });
  });
  var timer = setInterval(function () {
    remaining -= 1;
    if (remaining > 0) {
      seconds.textContent = String(remaining);
      return;
    }
    clearInterval(timer);
    buttons.forEach(function (button) {
      button.removeAttribute('aria-disabled');
    });
    note.textContent = 'You can ask for a new code now.';
    status.textContent = 'You can ask for a new code now.';
  }, 1000);
})();
