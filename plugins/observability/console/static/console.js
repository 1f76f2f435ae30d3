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
