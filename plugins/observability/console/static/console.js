// The console's behaviour in the browser: links that leave the console open in the whole window, and the run
// chart of a DAG's page.

// Inside the Airflow UI the console is framed (a DAG's Monitoring tab, the On-call page) in a sandbox without
// top navigation, so a task log, the Airflow UI or Alertmanager's silence form would open squeezed inside the
// frame. The sandbox allows same-origin scripts: the link is handed to the UI's own document, which follows it.
(function () {
  if (window.self === window.top) return;
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[href]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) return;
    const url = new URL(link.href, window.location.href);
    if (url.origin === window.location.origin && url.pathname.startsWith("/observability/")) return;
    try {
      const host = window.parent.document;
      const outer = host.createElement("a");
      outer.href = url.href;
      host.body.appendChild(outer);
      event.preventDefault();
      outer.click();
      outer.remove();
    } catch (refused) {
      // Not same-origin after all (a proxy in between): the link opens in the frame, as a plain link would.
    }
  });
})();

// The run-duration chart of a DAG's console page: one bar per run (oldest first, coloured by state) and the
// learned baseline as a line. The data is JSON in the page (#durations-data), so this file holds no values.
(function () {
  const source = document.getElementById("durations-data");
  const canvas = document.getElementById("durations");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const css = getComputedStyle(document.documentElement);
  const colour = (name) => css.getPropertyValue("--" + name).trim();
  const stateColour = { success: colour("success"), failed: colour("failed"), running: colour("running") };
  const datasets = [{
    type: "bar",
    label: "run duration (s)",
    data: data.seconds,
    backgroundColor: data.states.map((state) => stateColour[state] || colour("queued")),
    maxBarThickness: 28,
  }];
  if (data.baseline !== null) {
    datasets.push({
      type: "line",
      label: "baseline p95 (s)",
      data: data.seconds.map(() => data.baseline),
      borderColor: colour("retry"),
      borderDash: [6, 4],
      pointRadius: 0,
    });
  }
  new Chart(canvas, {
    data: { labels: data.labels, datasets: datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: "seconds" } }, x: { ticks: { display: false } } },
      plugins: { legend: { labels: { color: colour("fg") } } },
    },
  });
})();
