// Passkey buttons on frontdesk's pages. A button with data-fd-passkey
// ("register", "enrol", "step" or "sign-in") runs one WebAuthn ceremony: it
// asks the server for options (data-begin), hands them to the browser's
// navigator.credentials, sends the authenticator's answer back (data-finish)
// and goes where the server says, or, when the answer carries recovery codes
// and the button names a place for them (data-codes), shows them there with
// a link on. Without WebAuthn the buttons stay hidden.
(function () {
  "use strict";

  function toBytes(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toText(buf) {
    if (!buf) { return null; }
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = toBytes(pk.challenge);
    pk.user.id = toBytes(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return { publicKey: pk };
  }

  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = toBytes(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return { publicKey: pk };
  }

  function attestation(c) {
    return {
      id: c.id,
      rawId: toText(c.rawId),
      type: c.type,
      response: {
        attestationObject: toText(c.response.attestationObject),
        clientDataJSON: toText(c.response.clientDataJSON)
      },
      extensions: {}
    };
  }

  function assertion(c) {
    return {
      id: c.id,
      rawId: toText(c.rawId),
      type: c.type,
      response: {
        authenticatorData: toText(c.response.authenticatorData),
        clientDataJSON: toText(c.response.clientDataJSON),
        signature: toText(c.response.signature),
        userHandle: toText(c.response.userHandle)
      },
      extensions: {}
    };
  }

  function post(url, body, csrf) {
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    if (csrf) { headers["X-CSRF-Token"] = csrf; }
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(body || {})
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          throw new Error(data.detail || "The request failed (" + res.status + ").");
        }
        return data;
      });
    });
  }

  function say(button, message) {
    var out = document.getElementById(button.getAttribute("data-status"));
    if (out) { out.textContent = message; }
  }

  function showCodes(button, box, done) {
    var list = box.querySelector("ul");
    done.recovery_codes.forEach(function (c) {
      var item = document.createElement("li");
      var code = document.createElement("code");
      code.textContent = c;
      item.appendChild(code);
      list.appendChild(item);
    });
    var link = box.querySelector("a");
    if (link && done.redirect) { link.href = done.redirect; }
    var form = button.closest("[data-fd-passkey-box]");
    if (form) { form.hidden = true; }
    // The other ways to enrol are of no use now that the sign-in is done.
    var others = document.querySelectorAll("[data-fd-enrol-option]");
    for (var i = 0; i < others.length; i++) { others[i].hidden = true; }
    box.hidden = false;
    var heading = box.querySelector("h2");
    if (heading) { heading.focus(); }
  }

  function run(button) {
    var kind = button.getAttribute("data-fd-passkey");
    var csrf = button.getAttribute("data-csrf");
    var next = button.getAttribute("data-next");
    var ceremony;
    button.disabled = true;
    say(button, "");
    post(button.getAttribute("data-begin"), {}, csrf).then(function (begun) {
      ceremony = begun.ceremony;
      if (kind === "register" || kind === "enrol") {
        return navigator.credentials.create(creationOptions(begun.options));
      }
      return navigator.credentials.get(requestOptions(begun.options));
    }).then(function (credential) {
      if (!credential) { throw new Error("No passkey was chosen."); }
      var body = { ceremony: ceremony };
      if (kind === "register" || kind === "enrol") {
        var name = document.getElementById(button.getAttribute("data-name"));
        body.name = name ? name.value : "";
        body.credential = attestation(credential);
        if (next) { body.next = next; }
      } else {
        body.credential = assertion(credential);
        if (next) { body.next = next; }
      }
      return post(button.getAttribute("data-finish"), body, csrf);
    }).then(function (done) {
      var codes = document.getElementById(button.getAttribute("data-codes") || "");
      if (codes && done.recovery_codes) {
        showCodes(button, codes, done);
        return;
      }
      window.location.assign(done.redirect || window.location.href);
    }).catch(function (e) {
      button.disabled = false;
      say(button, e && e.name === "NotAllowedError"
        ? "The passkey request was cancelled or timed out."
        : (e && e.message) || "The passkey did not work.");
    });
  }

  if (!window.PublicKeyCredential || !navigator.credentials) { return; }
  var buttons = document.querySelectorAll("[data-fd-passkey]");
  for (var i = 0; i < buttons.length; i++) {
    (function (button) {
      var box = button.closest("[data-fd-passkey-box]") || button;
      box.hidden = false;
      button.addEventListener("click", function () { run(button); });
    })(buttons[i]);
  }
}());
