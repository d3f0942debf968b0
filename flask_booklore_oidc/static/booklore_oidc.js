/* flask-booklore-oidc: copy buttons and Test Connection in place on the settings page.
   Everything works without this script: Test Connection then reloads the page with its results.
   Every text it shows comes from a data-bo-* attribute the template translated; the English
   defaults here are for a host that overrides a template without them. */
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http (a homelab's LAN address): the async clipboard API is not available there.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      try {
        if (document.execCommand("copy")) { resolve(); } else { reject(new Error("copy refused")); }
      } catch (error) {
        reject(error);
      } finally {
        document.body.removeChild(area);
      }
    });
  }

  function text(element, name, fallback) {
    return (element && element.getAttribute(name)) || fallback;
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function setUpCopyButtons(root) {
    root.querySelectorAll("[data-copy-target]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy-target"));
        if (!source) { return; }
        copyText(source.textContent.trim()).then(function () {
          button.textContent = text(button, "data-bo-copied", "Copied");
          button.classList.add("bo-copied");
        }, function () {
          selectText(source);
          button.textContent = text(button, "data-bo-press", "Press Ctrl+C");
        }).then(function () {
          window.setTimeout(function () {
            button.textContent = text(button, "data-bo-copy", "Copy");
            button.classList.remove("bo-copied");
          }, 1800);
        });
      });
    });
  }

  function message(tag, className, role, content) {
    var element = document.createElement(tag);
    element.className = className;
    if (role) { element.setAttribute("role", role); }
    element.textContent = content;
    return element;
  }

  function setUpTestConnection() {
    var slot = document.getElementById("bo-checks");
    var buttons = Array.prototype.slice.call(document.querySelectorAll("[data-bo-test]"));
    if (!slot || !window.fetch || !window.FormData) { return; }
    buttons.forEach(function (button) {
      button.addEventListener("click", function (event) {
        var form = button.form;
        if (!form) { return; }
        event.preventDefault();
        buttons.forEach(function (b) {
          b.disabled = true;
          b.setAttribute("aria-busy", "true");
          b.setAttribute("data-label", b.textContent);
          b.textContent = text(b, "data-bo-testing", "Testing…");
        });
        slot.innerHTML = "";
        slot.appendChild(message("p", "bo-checks-running", null,
          text(slot, "data-bo-running", "Testing the connection with the values on this page…")));
        var panel = document.getElementById("test-connection");
        if (panel && panel.getBoundingClientRect().top < 0) { panel.scrollIntoView({ behavior: "smooth" }); }
        fetch(button.formAction.split("#")[0], {
          method: "POST",
          body: new FormData(form),
          credentials: "same-origin",
          headers: { "Accept": "text/html", "X-Requested-With": "fetch" }
        }).then(function (response) {
          return response.text().then(function (html) {
            // Our own server-rendered fragment (escaped by Jinja), or a sign-in page after a
            // session timeout, which the check below turns into advice.
            if ((response.headers.get("Content-Type") || "").indexOf("text/html") !== 0 || /<html/i.test(html)) {
              throw new Error("unexpected answer");
            }
            slot.innerHTML = html;
          });
        }).catch(function () {
          slot.innerHTML = "";
          slot.appendChild(message("div", "bo-banner bo-banner-fail", "alert", text(slot, "data-bo-failed",
            "Test Connection did not answer as expected (has your session expired?). Reload the page and try again.")));
        }).then(function () {
          buttons.forEach(function (b) {
            b.disabled = false;
            b.removeAttribute("aria-busy");
            b.textContent = b.getAttribute("data-label") || "Test Connection";
          });
        });
      });
    });
  }

  // Keyboard focus must never hide under the sticky Save/Test bar (WCAG 2.2 2.4.11): the page
  // scrolls focused controls above it through scroll-padding, set to the bar's real height.
  function keepFocusAboveTheBar() {
    var bar = document.querySelector(".bo-actions");
    if (!bar) { return; }
    function update() {
      var sticky = window.getComputedStyle(bar).position === "sticky";
      document.documentElement.style.scrollPaddingBottom = sticky ? (bar.offsetHeight + 24) + "px" : "";
    }
    update();
    window.addEventListener("resize", update);
  }

  setUpCopyButtons(document);
  setUpTestConnection();
  keepFocusAboveTheBar();
})();
