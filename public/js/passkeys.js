// Passkeys (WebAuthn) on the site's forms. It needs @simplewebauthn/browser, which the site serves
// itself at /assets/vendor/simplewebauthn-browser.js (it defines window.SimpleWebAuthnBrowser);
// views/partials/passkey-scripts.ejs includes both files, the library first. The server checks
// every answer: this file only carries it from the browser's passkey prompt to the form.
//
// The contract of a passkey form, as the server renders it:
//
//   <form method="post" action="…" data-passkey="register">      (or data-passkey="authenticate")
//     …csrf field, and for `register` a label field…
//     <script type="application/json" data-passkey-options>{…options…}</script>
//     <input type="hidden" name="credential">
//     <p data-passkey-error role="alert" hidden></p>
//     <button type="submit" data-passkey-start>…</button>
//   </form>
//
// - options: what @simplewebauthn/server's generateRegistrationOptions (register) or
//   generateAuthenticationOptions (authenticate) returned, as JSON, with "<" escaped (the server
//   does it: src/http/script-json.ts). A script of type application/json is never run, so it
//   needs nothing from the Content-Security-Policy.
// - On submit, or on a click of [data-passkey-start] when it is a type="button", it calls
//   SimpleWebAuthnBrowser.startRegistration({ optionsJSON }) or startAuthentication({ optionsJSON }),
//   puts JSON.stringify(answer) into the hidden `credential` input and submits the form.
// - When that fails (cancelled, timed out, not supported) it says why in [data-passkey-error],
//   and the form stays usable: the person may try again or choose another way.
// - Without passkey support in the browser, it says so there and hides [data-passkey-start].
// - A register form whose other fields are not valid is sent without asking for a passkey: the
//   server shows those fields' errors, and no passkey is made for nothing.
(function () {
  'use strict';

  var forms = Array.prototype.slice.call(document.querySelectorAll('form[data-passkey]'));
  if (forms.length === 0) return;

  var library = window.SimpleWebAuthnBrowser;
  var supported = typeof window.PublicKeyCredential === 'function';

  function describeFailure(error, kind, needsUserVerification) {
    var name = (error && error.name) || '';
    var code = (error && error.code) || '';
    var orElse = kind === 'authenticate' ? ', or choose another way' : '';
    if (
      code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED' ||
      (kind === 'register' && name === 'InvalidStateError')
    ) {
      return 'This device already holds a passkey for your account. Use another device or security key.';
    }
    if (name === 'NotAllowedError' || name === 'AbortError' || code === 'ERROR_CEREMONY_ABORTED') {
      // Browsers say only this when the person cancelled, when time ran out, and (so that a site
      // cannot probe a device) when the device holds none of the account's passkeys. Also when the
      // step requires user verification (the secure area) and the device cannot give it, as a
      // security key without a PIN: the words name that requirement, the likeliest cause there.
      if (kind === 'authenticate' && needsUserVerification) {
        return 'No passkey was used. This step needs a passkey that checks it is you (a PIN, fingerprint or face), not one that only asks for a touch. Or the request was cancelled or timed out, or this device holds none of your passkeys. Try again, or choose another way.';
      }
      return kind === 'authenticate'
        ? 'No passkey was used: the request was cancelled or timed out, or this device holds none of your passkeys. Try again, or choose another way.'
        : 'The passkey request was cancelled or timed out. Try again.';
    }
    if (name === 'SecurityError' || code === 'ERROR_INVALID_DOMAIN' || code === 'ERROR_INVALID_RP_ID') {
      return 'Passkeys do not work at this address of the site. Open it at its usual address' + orElse + '.';
    }
    if (name === 'NotSupportedError') {
      return 'This browser or device cannot use this kind of passkey. Try another one' + orElse + '.';
    }
    return 'The passkey could not be used. Try again' + orElse + '.';
  }

  forms.forEach(function (form) {
    var kind = form.getAttribute('data-passkey');
    var optionsElement = form.querySelector('script[type="application/json"][data-passkey-options]');
    var credential = form.querySelector('input[name="credential"]');
    var errorElement = form.querySelector('[data-passkey-error]');
    var start = form.querySelector('[data-passkey-start]');
    if ((kind !== 'register' && kind !== 'authenticate') || !optionsElement || !credential) return;

    function showError(message) {
      if (!errorElement) return;
      errorElement.textContent = message;
      errorElement.hidden = false;
    }

    if (!supported || !library) {
      showError(
        !supported
          ? kind === 'register'
            ? 'This browser cannot make passkeys. Try another browser or device.'
            : 'This browser cannot use passkeys. Choose another way.'
          : 'The passkey script did not load. Reload the page and try again.',
      );
      if (start) start.hidden = true;
      return;
    }

    var busy = false;

    function run(event) {
      if (event) event.preventDefault();
      if (busy) return;
      // Other fields wrong (an empty label): the server says so, before any passkey is made.
      if (kind === 'register' && !form.checkValidity()) {
        form.submit();
        return;
      }
      var optionsJSON;
      try {
        optionsJSON = JSON.parse(optionsElement.textContent);
      } catch (error) {
        showError('This page is out of date. Reload it and try again.');
        return;
      }
      busy = true;
      credential.value = '';
      if (errorElement) errorElement.hidden = true;
      if (start) start.setAttribute('aria-disabled', 'true');
      var ceremony =
        kind === 'register'
          ? library.startRegistration({ optionsJSON: optionsJSON })
          : library.startAuthentication({ optionsJSON: optionsJSON });
      ceremony.then(
        function (answer) {
          credential.value = JSON.stringify(answer);
          // submit(), not requestSubmit(): no second submit event, so no second ceremony.
          form.submit();
        },
        function (error) {
          busy = false;
          if (start) start.removeAttribute('aria-disabled');
          showError(describeFailure(error, kind, optionsJSON.userVerification === 'required'));
        },
      );
    }

    form.addEventListener('submit', run);
    if (start && start.getAttribute('type') === 'button') start.addEventListener('click', run);
  });
})();
