// The portfolio page: stompjs over ws://<this host>/portfolio.
//
// Destinations (see stomp_proto/demo/_portfolio.py):
//   SUBSCRIBE /app/quotes, /app/positions   answered once by the application
//   SUBSCRIBE /topic/price.stock.*          live prices
//   SUBSCRIBE /user/queue/position-updates  this user's trades, from any of their sessions
//   SUBSCRIBE /user/queue/errors            this session's refused trades
//   SEND /app/trade                         {"action", "ticker", "shares"}
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  const count = new Intl.NumberFormat("en-US");

  const prices = new Map(); // ticker -> {company, price, open}
  const positions = new Map(); // ticker -> shares
  let client = null;
  let user = null;
  let refused = null; // the ERROR text of a refused login

  // -- views ------------------------------------------------------------------

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = "status " + kind;
  }

  function showLogin(error) {
    $("app-view").hidden = true;
    $("login-view").hidden = false;
    $("logout").hidden = true;
    $("login-button").disabled = false;
    const box = $("login-error");
    box.hidden = !error;
    box.textContent = error || "";
    setStatus("offline", "offline");
  }

  function showApp() {
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    $("logout").hidden = false;
    setStatus("connected as " + user, "online");
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function priceRow(ticker) {
    const body = $("prices").tBodies[0];
    let row = body.querySelector(`tr[data-ticker="${CSS.escape(ticker)}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.ticker = ticker;
      row.title = "Trade " + ticker;
      cell(row, ticker, "ticker");
      cell(row, "", "company");
      cell(row, "", "num price");
      cell(row, "", "num change");
      row.addEventListener("click", () => {
        $("ticker").value = ticker;
        $("shares").focus();
      });
      const rows = Array.from(body.rows);
      const after = rows.find((r) => r.dataset.ticker > ticker);
      body.insertBefore(row, after || null);
      const option = document.createElement("option");
      option.value = ticker;
      $("tickers").appendChild(option);
    }
    return row;
  }

  function renderPrice(ticker, previous) {
    const quote = prices.get(ticker);
    const row = priceRow(ticker);
    row.querySelector(".company").textContent = quote.company || "";
    row.querySelector(".price").textContent = money.format(quote.price);
    const change = (quote.price - quote.open) / quote.open;
    const changeCell = row.querySelector(".change");
    changeCell.textContent = (change >= 0 ? "+" : "") + (100 * change).toFixed(2) + " %";
    changeCell.className = "num change " + (change > 0 ? "up" : change < 0 ? "down" : "");
    if (previous !== undefined && previous !== quote.price) {
      const flash = quote.price > previous ? "flash-up" : "flash-down";
      row.classList.remove("flash-up", "flash-down");
      void row.offsetWidth; // restart the animation
      row.classList.add(flash);
    }
    if (positions.has(ticker)) renderPositions();
  }

  function renderPositions() {
    const body = $("positions").tBodies[0];
    body.replaceChildren();
    let total = 0;
    let priced = true;
    for (const ticker of Array.from(positions.keys()).sort()) {
      const shares = positions.get(ticker);
      const quote = prices.get(ticker);
      const row = document.createElement("tr");
      row.dataset.ticker = ticker;
      cell(row, ticker, "ticker");
      cell(row, count.format(shares), "num shares");
      cell(row, quote ? money.format(quote.price) : "…", "num price");
      cell(row, quote ? money.format(quote.price * shares) : "…", "num value");
      if (quote) total += quote.price * shares;
      else priced = false;
      body.appendChild(row);
    }
    $("total").textContent = positions.size && priced ? money.format(total) : "–";
    $("no-positions").hidden = positions.size > 0;
  }

  function note(text, kind) {
    const item = document.createElement("li");
    item.className = kind;
    const time = document.createElement("time");
    time.textContent = new Date().toLocaleTimeString("en-GB");
    const span = document.createElement("span");
    span.textContent = text;
    item.append(time, span);
    const list = $("activity");
    list.prepend(item);
    while (list.children.length > 30) list.lastElementChild.remove();
    $("no-activity").hidden = true;
  }

  // -- STOMP --------------------------------------------------------------------

  function json(message) {
    try {
      return JSON.parse(message.body);
    } catch (e) {
      note("unreadable message on " + message.headers.destination, "error");
      return null;
    }
  }

  function onConnect() {
    showApp();
    client.subscribe("/app/quotes", (m) => {
      for (const q of json(m) || []) {
        const known = prices.get(q.ticker);
        prices.set(q.ticker, { company: q.company, price: known ? known.price : q.price, open: q.open });
        renderPrice(q.ticker);
      }
    });
    client.subscribe("/topic/price.stock.*", (m) => {
      const q = json(m);
      if (!q) return;
      const known = prices.get(q.ticker);
      const previous = known ? known.price : undefined;
      prices.set(q.ticker, {
        company: known ? known.company : "",
        price: q.price,
        open: known ? known.open : q.price,
      });
      renderPrice(q.ticker, previous);
    });
    client.subscribe("/app/positions", (m) => {
      positions.clear();
      for (const p of json(m) || []) positions.set(p.ticker, p.shares);
      renderPositions();
    });
    client.subscribe("/user/queue/position-updates", (m) => {
      const p = json(m);
      if (!p) return;
      if (p.shares > 0) positions.set(p.ticker, p.shares);
      else positions.delete(p.ticker);
      renderPositions();
      const verb = p.action === "SELL" ? "Sold" : "Bought";
      note(
        `${verb} ${count.format(p.traded)} ${p.ticker} at ${money.format(p.price)}: ` +
          `you now hold ${count.format(p.shares)}`,
        "ok",
      );
    });
    client.subscribe("/user/queue/errors", (m) => {
      const e = json(m);
      if (e) note("Refused: " + e.error, "error");
    });
  }

  function logIn(login, passcode) {
    user = login;
    refused = null;
    prices.clear();
    positions.clear();
    $("prices").tBodies[0].replaceChildren();
    $("tickers").replaceChildren();
    $("activity").replaceChildren();
    $("no-activity").hidden = false;
    $("login-button").disabled = true;
    setStatus("connecting…", "pending");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    client = new StompJs.Client({
      brokerURL: scheme + location.host + "/portfolio",
      connectHeaders: { login: login, passcode: passcode },
      reconnectDelay: 0, // a refused login must not be retried
      heartbeatIncoming: 10000,
      heartbeatOutgoing: 10000,
    });
    client.onConnect = onConnect;
    client.onStompError = (frame) => {
      const text = frame.headers.message || "error";
      const detail = frame.body ? ": " + frame.body.trim() : "";
      if (!client.connected && $("app-view").hidden) refused = text + detail;
      else note("Server error: " + text + detail, "error");
    };
    client.onWebSocketClose = (event) => {
      const current = client;
      if ($("app-view").hidden) {
        showLogin(refused ? "Login refused: " + refused : "Cannot connect (WebSocket closed, code " + event.code + ")");
        current.deactivate();
      } else if (current.active) {
        setStatus("disconnected", "offline");
        note("Connection lost: log in again", "error");
        current.deactivate();
      }
    };
    client.activate();
  }

  // -- forms ----------------------------------------------------------------------

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const login = $("login").value.trim();
    if (login) logIn(login, $("passcode").value);
  });

  $("logout").addEventListener("click", () => {
    const current = client;
    client = null;
    if (current) {
      current.onWebSocketClose = () => {};
      current.deactivate();
    }
    $("passcode").value = "";
    showLogin();
  });

  $("trade-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!client || !client.connected) {
      note("Not connected", "error");
      return;
    }
    const action = document.querySelector("input[name=action]:checked").value;
    const ticker = $("ticker").value.trim().toUpperCase();
    const raw = $("shares").value.trim();
    const shares = raw === "" ? null : Number(raw);
    client.publish({
      destination: "/app/trade",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ action: action, ticker: ticker, shares: shares }),
    });
  });

  showLogin();
})();
