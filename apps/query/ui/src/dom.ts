/** A tiny element builder: the page is plain TypeScript, no UI framework. */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** `h("button", { class: "x", onclick: fn }, "text")`: attributes, `on*` listeners, children (falsy ones skipped). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value" && "value" in el) (el as HTMLInputElement).value = String(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

/** Replaces all children of `el`. */
export function replace(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A `<select>` with options `[value, label]`; the current value selected. */
export function select(attrs: Attrs, options: readonly (readonly [string, string])[], current: string): HTMLSelectElement {
  const s = h("select", attrs, ...options.map(([value, label]) => h("option", { value, selected: value === current }, label)));
  s.value = current;
  return s;
}

/** A labelled field: `<label><span>text</span>control</label>`. */
export function field(label: string, control: HTMLElement, cls = "field"): HTMLLabelElement {
  return h("label", { class: cls }, h("span", { class: "field-label" }, label), control);
}
