// Local times and live countdowns; the pages work without it (times then read in UTC).
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";
  var fmt = new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"
  });
  var words = lang === "zh" ? { left: "剩余", late: "已超时" } : { left: "due in", late: "late" };
  function span(ms) {
    var s = Math.floor(Math.abs(ms) / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
        m = Math.floor(s % 3600 / 60);
    var u = lang === "zh" ? ["天", "小时", "分"] : ["d", "h", "m"];
    return (d ? d + u[0] + " " : "") + (d || h ? h + u[1] + " " : "") + m + u[2];
  }
  // The server's clock, not the browser's, says what is late (they may differ).
  var serverNow = Date.parse(document.body.getAttribute("data-now") || "");
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();
  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var ms = Date.parse(el.getAttribute("data-due")) - now;
      el.textContent = ms >= 0 ? words.left + " " + span(ms) : words.late + " " + span(ms);
      el.classList.toggle("late", ms < 0);
    });
  }
  document.querySelectorAll("time[datetime]:not([data-keep])").forEach(function (el) {
    var t = Date.parse(el.getAttribute("datetime"));
    if (!isNaN(t)) { el.title = el.getAttribute("datetime"); el.textContent = fmt.format(new Date(t)); }
  });
  // The server cuts "today" and report days in the viewer's zone: tell it which.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("casework_tz=" + encodeURIComponent(zone)) < 0) {
      document.cookie = "casework_tz=" + encodeURIComponent(zone) + "; path=/; SameSite=Strict; max-age=31536000";
    }
  } catch (e) { /* no Intl zone: the server's display zone applies */ }
  // A file goes up as the request's body, the session's CSRF token in a header.
  var upload = document.getElementById("upload");
  if (upload) {
    upload.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = upload.querySelector("input[type=file]").files[0];
      var said = upload.querySelector(".refusal");
      if (!file) { return; }
      var url = upload.getAttribute("data-url") + "?kind=" +
        encodeURIComponent(upload.querySelector("select[name=kind]").value) +
        "&name=" + encodeURIComponent(file.name);
      fetch(url, { method: "POST", body: file, credentials: "same-origin", headers: {
        "Content-Type": "application/octet-stream", "X-CSRF-Token": upload.getAttribute("data-csrf")
      } }).then(function (answer) {
        if (answer.ok) { window.location.reload(); return; }
        if (answer.status === 413) {
          said.textContent = lang === "zh" ? "文件太大。" : "The file is too large.";
          said.hidden = false;
          return;
        }
        return answer.text().then(function (text) { said.textContent = text; said.hidden = false; });
      });
    });
  }
  tick();
  setInterval(tick, 1000);
})();
