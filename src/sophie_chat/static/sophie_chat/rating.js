// After the visitor ends a conversation: a 1-5 star radio group (arrow keys move between stars,
// as in any radio group), an optional comment, then thanks and a way to start again.

import { h, icon } from "./dom.js";

export class RatingPanel {
  /** @param {object} ctx  {t, onRate(score, comment), onDone()} */
  constructor(ctx) {
    this.ctx = ctx;
    const { t } = ctx;
    this.el = h("div", { class: "sc-panel", hidden: true });
    const stars = [1, 2, 3, 4, 5].map((score) =>
      h(
        "label",
        { class: "sc-star", title: t("rateStar", { count: score }) },
        h("input", {
          type: "radio",
          name: "sc-score",
          value: score,
          "aria-label": t("rateStar", { count: score }),
          onchange: () => this.paint(score),
        }),
        icon("star"),
      ),
    );
    this.stars = stars;
    this.comment = h("textarea", { id: "sc-rate-comment", rows: 2, maxlength: 1000 });
    this.submit = h(
      "button",
      { type: "submit", class: "sc-primary", disabled: true },
      t("rateSubmit"),
    );
    this.form = h(
      "form",
      { class: "sc-rate", onsubmit: (event) => this.send(event) },
      h(
        "fieldset",
        {},
        h("legend", { class: "sc-panel-title" }, t("rateTitle")),
        h("div", { class: "sc-stars" }, stars),
      ),
      h("label", { class: "sc-label", for: "sc-rate-comment" }, t("rateComment")),
      this.comment,
      h(
        "div",
        { class: "sc-actions" },
        h(
          "button",
          { type: "button", class: "sc-ghost", onclick: () => this.thank(false) },
          t("rateSkip"),
        ),
        this.submit,
      ),
    );
    this.thanks = h(
      "div",
      { class: "sc-thanks", hidden: true },
      h("p", { class: "sc-panel-title", tabindex: -1 }, t("rateThanks")),
      h(
        "button",
        { type: "button", class: "sc-primary", onclick: () => ctx.onDone() },
        t("newConversation"),
      ),
    );
    this.el.append(this.form, this.thanks);
  }

  show() {
    this.form.reset();
    this.paint(0);
    this.submit.disabled = true;
    this.form.hidden = false;
    this.thanks.hidden = true;
    this.el.hidden = false;
    this.stars[0].querySelector("input").focus();
  }

  hide() {
    this.el.hidden = true;
  }

  paint(score) {
    this.score = score;
    this.submit.disabled = !score;
    this.stars.forEach((star, i) => star.classList.toggle("sc-on", i < score));
  }

  send(event) {
    event.preventDefault();
    if (!this.score) return;
    this.ctx.onRate(this.score, this.comment.value.trim());
  }

  /** Shown on the server's `rated` frame, or straight away when the visitor skips. */
  thank(rated = true) {
    this.form.hidden = true;
    this.thanks.hidden = false;
    const title = this.thanks.querySelector(".sc-panel-title");
    title.textContent = this.ctx.t(rated ? "rateThanks" : "ended");
    title.focus();
  }
}
