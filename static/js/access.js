// Access pages: let HTMX swap the answers that carry a message for the person
// (403 not allowed, 409 already decided, 400 invalid), instead of dropping them.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status === 400 || status === 403 || status === 409) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
