"""The web page at ``/``: pick a pipeline model, type a text, see its label and scores.

Plain HTML and JavaScript, no external assets: it lists ``GET /v1/models`` and posts to
``/v1/models/{name}:predict``. Token classification shows the entities found.
"""

HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>graphcap serve</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; }
  textarea { width: 100%; height: 5rem; font: inherit; }
  #label { font-size: 1.4rem; font-weight: 600; }
  .bar { background: #4a7bd0; height: 0.8rem; display: inline-block; }
  td { padding: 0.1rem 0.6rem 0.1rem 0; }
  .error { color: #b00020; }
  mark { background: #ffe08a; }
</style>
</head>
<body>
<h1>graphcap serve</h1>
<p><label>Model <select id="model"></select></label> <span id="task"></span></p>
<textarea id="text" placeholder="Type a text"></textarea>
<p><button id="run" type="button">Predict</button> <span id="status"></span></p>
<div id="result"><div id="label"></div><table id="scores"></table><p id="entities"></p></div>
<script>
const $ = (id) => document.getElementById(id);
let models = [];
function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;"})[c]);
}
async function load() {
  const reply = await fetch("/v1/models");
  models = (await reply.json()).models.filter((m) => m.kind === "pipeline");
  $("model").innerHTML = models.map((m) => `<option>${esc(m.name)}</option>`).join("");
  if (!models.length) {
    $("status").textContent = "no pipeline model is served: this page needs one";
    $("run").disabled = true;
  }
  showTask();
}
function showTask() {
  const m = models.find((x) => x.name === $("model").value);
  $("task").textContent = m ? `${m.task}: ${m.labels.join(", ")}` : "";
}
async function predict() {
  const name = $("model").value;
  $("status").textContent = "...";
  $("status").className = "";
  const reply = await fetch(`/v1/models/${encodeURIComponent(name)}:predict`, {
    method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({instances: [$("text").value]}),
  });
  const body = await reply.json();
  if (!reply.ok) {
    $("status").textContent = body.error;
    $("status").className = "error";
    return;
  }
  $("status").textContent = `version ${body.model_version}`;
  show(body.predictions[0], $("text").value);
}
function show(answer, text) {
  $("label").textContent = answer.label ?? "";
  $("scores").innerHTML = (answer.scores || []).map((s) =>
    `<tr><td class="name">${esc(s.label)}</td><td class="score">${s.score.toFixed(4)}</td>` +
    `<td><span class="bar" style="width:${(s.score * 12).toFixed(2)}rem"></span></td></tr>`
  ).join("");
  const ents = answer.entities || [];
  $("entities").innerHTML = ents.length ? ents.map((e) =>
    `<mark>${esc(e.word)}</mark> ${esc(e.entity)} (${e.score.toFixed(3)})`).join("<br>") :
    (answer.tags ? "no entities" : "");
}
$("model").addEventListener("change", showTask);
$("run").addEventListener("click", predict);
load();
</script>
</body>
</html>
"""
