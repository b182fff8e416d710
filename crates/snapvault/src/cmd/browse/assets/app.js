// snapvault browse: arrow keys step between photos (links marked rel=prev / rel=next).
document.addEventListener("keydown", function (e) {
  if (e.altKey || e.ctrlKey || e.metaKey) return;
  var rel = e.key === "ArrowLeft" ? "prev" : e.key === "ArrowRight" ? "next" : null;
  if (!rel) return;
  var a = document.querySelector('a[rel="' + rel + '"]');
  if (a) location.href = a.href;
});
