/**
 * The H5 chat demo, shared by index.html (UMD bundle) and esm.html (ESM build). Plain DOM: every piece of
 * user or server text goes through textContent, never innerHTML.
 */
(function () {
  'use strict';

  var STATE_TEXT = {
    idle: 'signed out',
    connecting: 'connecting…',
    authenticating: 'signing in…',
    online: 'online',
    reconnecting: 'reconnecting…',
    closed: 'signed out',
    kicked: 'kicked out',
  };

  var SHELL =
    '<header class="bar">' +
    '  <h1>MobileIMSDK-TS <small class="build"></small></h1>' +
    '  <div class="status">' +
    '    <span class="state" data-state="idle" role="status" aria-live="polite">signed out</span>' +
    '    <button type="button" class="b-reconnect" hidden>Reconnect now</button>' +
    '    <button type="button" class="b-echo" disabled>Echo</button>' +
    '    <span class="rtt"></span>' +
    '    <span class="me"></span>' +
    '    <button type="button" class="b-logout" hidden>Log out</button>' +
    '  </div>' +
    '</header>' +
    '<div class="notice" role="alert" hidden></div>' +
    '<form class="login" autocomplete="off">' +
    '  <label>Server <input class="f-server" required spellcheck="false"></label>' +
    '  <label>User id <input class="f-user" required spellcheck="false"></label>' +
    '  <label>Token <input class="f-token" spellcheck="false"></label>' +
    '  <button class="b-login">Log in</button>' +
    '  <p class="login-error" role="alert"></p>' +
    '</form>' +
    '<ul class="messages" aria-live="polite"></ul>' +
    '<form class="composer" autocomplete="off">' +
    '  <input class="f-to" placeholder="to (user id; 0 = the server)" aria-label="Recipient" spellcheck="false">' +
    '  <input class="f-text" placeholder="Write a message" aria-label="Message">' +
    '  <button class="b-send" disabled>Send</button>' +
    '</form>';

  /** A fingerprint for one message (kept across retries, so the receiver de-duplicates them). */
  function newFingerprint() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join('');
    return hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-' + hex.slice(12, 16) + '-' + hex.slice(16, 20) + '-' + hex.slice(20);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clock(ms) {
    var d = ms ? new Date(ms) : new Date();
    return d.toTimeString().slice(0, 8);
  }

  /** Fills the page's root element with the chat and wires it to the SDK namespace `sdk`. */
  function startChatDemo(sdk, buildLabel) {
    var root = document.getElementById('app');
    root.innerHTML = SHELL;
    var $ = function (sel) { return root.querySelector(sel); };
    var ui = {
      build: $('.build'), state: $('.state'), reconnect: $('.b-reconnect'), echo: $('.b-echo'), rtt: $('.rtt'),
      me: $('.me'), logout: $('.b-logout'), notice: $('.notice'), login: $('.login'), server: $('.f-server'),
      user: $('.f-user'), token: $('.f-token'), loginButton: $('.b-login'), loginError: $('.login-error'),
      list: $('.messages'), composer: $('.composer'), to: $('.f-to'), text: $('.f-text'), send: $('.b-send'),
    };
    ui.build.textContent = buildLabel;

    var params = new URLSearchParams(location.search);
    ui.user.value = params.get('user') || 'alice';
    ui.to.value = params.get('to') || (ui.user.value === 'bob' ? 'alice' : 'bob');
    ui.token.value = params.get('token') || 'demo-token';
    ui.server.value = params.get('server') || 'ws://' + (location.hostname || '127.0.0.1') + ':3000/websocket';
    if (!params.get('server')) {
      fetch('config.json', { cache: 'no-store' })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (c) {
          if (c && c.wsPort && !client) ui.server.value = 'ws://' + (location.hostname || '127.0.0.1') + ':' + c.wsPort + c.wsPath;
        })
        .catch(function () {});
    }

    var client = null;
    var countdown = null;

    function showState(name, text) {
      ui.state.dataset.state = name;
      ui.state.textContent = text || STATE_TEXT[name] || name;
      var online = name === 'online';
      ui.echo.disabled = !online;
      ui.send.disabled = !client || name === 'closed' || name === 'kicked' || name === 'idle';
      ui.reconnect.hidden = name !== 'reconnecting';
      ui.logout.hidden = !client || name === 'closed' || name === 'kicked';
      ui.login.hidden = !!client && name !== 'closed' && name !== 'kicked';
      document.body.dataset.state = name;
    }

    function stopCountdown() {
      if (countdown) clearInterval(countdown);
      countdown = null;
    }

    function startCountdown(attempt, delayMs) {
      stopCountdown();
      var due = Date.now() + delayMs;
      var tick = function () {
        var left = Math.max(0, due - Date.now());
        showState('reconnecting', left > 0
          ? 'reconnecting in ' + (left / 1000).toFixed(1) + ' s (attempt ' + attempt + ')'
          : 'reconnecting now (attempt ' + attempt + ')');
        if (left === 0) stopCountdown();
      };
      tick();
      countdown = setInterval(tick, 100);
    }

    function notice(text, kind) {
      ui.notice.textContent = text;
      ui.notice.dataset.kind = kind || 'info';
      ui.notice.hidden = !text;
    }

    function addRow(dir, peer, content, fp, status, time) {
      var li = el('li', 'msg');
      li.dataset.dir = dir;
      if (fp) li.dataset.fp = fp;
      var label = dir === 'push' ? 'server push' : dir === 'out' ? (peer === '0' ? 'to the server' : 'to ' + peer) : 'from ' + peer;
      var meta = el('div', 'msg-meta');
      meta.appendChild(el('span', 'msg-peer', label));
      meta.appendChild(el('time', 'msg-time', clock(time)));
      li.appendChild(meta);
      li.appendChild(el('div', 'msg-text', content));
      var foot = el('div', 'msg-foot');
      foot.appendChild(el('span', 'msg-status'));
      li.appendChild(foot);
      ui.list.appendChild(li);
      setStatus(li, status);
      li.scrollIntoView({ block: 'end' });
      return li;
    }

    /**
     * Shows a row's status; `onRetry` adds a Retry button (lost messages). An outgoing message shows ✓ once
     * the server has it (`delivered`) and ✓✓ once the receiver's device has it (`received`, our server only).
     * `text` replaces the status word (a refused message says why instead).
     */
    function setStatus(li, status, detail, onRetry, text) {
      li.dataset.status = status;
      var foot = li.querySelector('.msg-foot');
      var label = { sending: 'sending…', delivered: 'delivered ✓', lost: 'lost', received: '' }[status];
      if (status === 'delivered' && li.dataset.receipt) label = 'received ✓✓';
      if (text) label = text;
      foot.querySelector('.msg-status').textContent = detail ? label + ' (' + detail + ')' : label;
      var retry = foot.querySelector('.b-retry');
      if (retry) retry.remove();
      if (onRetry) {
        retry = el('button', 'b-retry', 'Retry');
        retry.type = 'button';
        retry.addEventListener('click', onRetry);
        foot.appendChild(retry);
      }
    }

    /** Sends (or re-sends, with the same fingerprint) one message and tracks its row. */
    function transmit(message, li) {
      setStatus(li, 'sending');
      var sent;
      try {
        sent = client ? client.send(message.to, message.content, { qos: true, fp: message.fp }) : Promise.reject(new Error('not logged in'));
      } catch (err) {
        sent = Promise.reject(err);
      }
      delete li.dataset.receipt;
      sent.then(
        function () { setStatus(li, 'delivered'); },
        function (err) {
          var code = err && err.code;
          // Refused for its size (or by the server for good): sending it again would be refused again.
          if (code === 'MESSAGE_REFUSED' || code === 'MESSAGE_TOO_LARGE') {
            setStatus(li, 'lost', '', null, err.limit ? 'too large (limit ' + err.limit + ' bytes)' : 'refused by the server (code ' + err.serverCode + ')');
            return;
          }
          setStatus(li, 'lost', code || String(err && err.message), function () { transmit(message, li); });
        },
      );
    }

    /** The receiver's device has message `fp`: ✓✓ on its row. */
    function markReceived(fp) {
      var rows = ui.list.querySelectorAll('.msg[data-dir="out"]');
      for (var i = 0; i < rows.length; i++) {
        if (rows[i].dataset.fp !== fp) continue;
        rows[i].dataset.receipt = 'received';
        if (rows[i].dataset.status === 'delivered') setStatus(rows[i], 'delivered');
      }
    }

    function connect(event) {
      event.preventDefault();
      ui.loginError.textContent = '';
      notice('');
      if (!ui.user.value.trim()) {
        ui.loginError.textContent = 'Enter a user id (spaces alone are not one).';
        ui.user.focus();
        return;
      }
      if (client) client.destroy();
      var c = (client = new sdk.IMClient({ url: ui.server.value.trim(), adapter: sdk.createBrowserAdapter() }));
      c.on('state', function (e) {
        if (c !== client) return;
        var offline = e.reason === 'offline';
        if (e.to !== 'reconnecting' || offline) stopCountdown();
        if (e.to === 'reconnecting') {
          if (!countdown) showState('reconnecting', offline ? 'offline: waiting for the network' : undefined);
        } else if (!(e.to === 'closed' && e.reason === 'kicked')) {
          showState(e.to);
        }
        if (e.to === 'closed' && e.reason === 'reconnect-failed') notice('Gave up reconnecting. Log in again.', 'error');
      });
      c.on('reconnect', function (e) { if (c === client) startCountdown(e.attempt, e.delayMs); });
      c.on('received', function (e) { if (c === client) markReceived(e.fp); });
      c.on('kicked', function (e) {
        if (c !== client) return;
        showState('kicked');
        var why = e.code === 1 ? 'this user signed in somewhere else' : e.code === 2 ? 'removed by the administrator' : 'code ' + e.code;
        notice('Kicked out: ' + why + (e.reason ? ' (' + e.reason + ')' : '') + '. Log in again to continue.', 'error');
      });
      c.on('message', function (m) {
        if (c !== client) return;
        var push = m.from === '0';
        addRow(push ? 'push' : 'in', m.from, m.content, m.fp, 'received', m.serverTime);
        if (!push && !ui.to.value) ui.to.value = m.from;
      });
      c.login({ userId: ui.user.value.trim(), token: ui.token.value }).then(
        function (r) {
          if (c !== client) return;
          ui.me.textContent = 'as ' + r.userId;
          c.echo().then(function (e) { ui.rtt.textContent = 'echo ' + e.rttMs + ' ms'; }, function () {});
        },
        function (err) {
          if (c !== client) return;
          ui.loginError.textContent = 'Login failed: ' + (err && err.message ? err.message : String(err));
          client = null;
          c.destroy();
          showState('idle');
        },
      );
      showState(c.state);
    }

    ui.login.addEventListener('submit', connect);
    ui.composer.addEventListener('submit', function (event) {
      event.preventDefault();
      var to = ui.to.value.trim();
      var content = ui.text.value;
      if (!client || !to || !content.trim()) return;
      var message = { fp: newFingerprint(), to: to, content: content };
      var li = addRow('out', to, content, message.fp, 'sending');
      ui.text.value = '';
      ui.text.focus();
      transmit(message, li);
    });
    ui.echo.addEventListener('click', function () {
      if (!client) return;
      ui.rtt.textContent = 'echo…';
      client.echo().then(
        function (e) { ui.rtt.textContent = 'echo ' + e.rttMs + ' ms'; },
        function (err) { ui.rtt.textContent = 'echo failed: ' + err.code; },
      );
    });
    ui.reconnect.addEventListener('click', function () { if (client) client.reconnectNow(); });
    ui.logout.addEventListener('click', function () {
      if (!client) return;
      var c = client;
      c.logout().then(function () {
        c.destroy();
        if (c === client) client = null;
        ui.me.textContent = '';
        ui.rtt.textContent = '';
        showState('idle');
      });
    });
    showState('idle');
  }

  window.startChatDemo = startChatDemo;
})();
