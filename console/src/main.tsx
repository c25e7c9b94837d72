import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App, takePortalTokenFromUrl } from "./App";
import { currentMode } from "./api";
import "./styles.css";

if (currentMode() === "portal") {
  takePortalTokenFromUrl();
  // A new link opened in this tab may differ only in its fragment: start over with its token.
  window.addEventListener("hashchange", () => {
    if (/^#token=/.test(location.hash)) {
      takePortalTokenFromUrl();
      location.reload();
    }
  });
}

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
