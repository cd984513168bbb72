/* The ticket page's running timer: counts up from the elapsed seconds the server rendered
   (data-timer-elapsed), so the device's clock does not matter. The timer itself is stored
   on the server; this script only keeps the display moving. No inline script (CSP). */
(function () {
  document.querySelectorAll("[data-timer-elapsed]").forEach(function (clock) {
    var elapsed = parseInt(clock.getAttribute("data-timer-elapsed"), 10);
    if (isNaN(elapsed)) return;
    var loaded = Date.now();
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    function tick() {
      var seconds = elapsed + Math.floor((Date.now() - loaded) / 1000);
      var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
      clock.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(s);
    }
    tick();
    window.setInterval(tick, 1000);
  });
})();
