// Swagger UI start-up, kept out of the page so that its CSP needs no inline script.
window.addEventListener("DOMContentLoaded", function () {
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: node.dataset.url, dom_id: "#swagger-ui", deepLinking: true });
});
