"""What the explorer notebooks share: ipywidgets controls over a dict of views, drawn into one
output area, and nothing drawn until the widget is on screen."""

from __future__ import annotations


class ViewPanel:
    """Subclasses set `controls` (name -> widget), `output` (an ipywidgets.Output), `current`
    (name -> HTML string or chart) and `interactive`, and call `_init_panel()` first."""

    row_split = 3  # controls shown on the first row

    def _init_panel(self) -> None:
        import ipywidgets as w

        self.output = w.Output()
        self.current: dict[str, object] = {}
        self._drawn = False
        self._shown = False  # draw into the output area only once the widget is on screen

    def value(self, name: str):
        return self.controls[name].value

    def _render(self) -> None:
        from IPython.display import HTML

        if not self.interactive or not self._shown:
            return
        if self._drawn:  # only after a control changed: clearing during a papermill run can stall nbclient
            self.output.clear_output()
        self._drawn = True
        # append_display_data sets the widget's outputs directly (no output capture), which
        # papermill/nbclient runs handle without stalling
        for v in self.current.values():
            self.output.append_display_data(HTML(v) if isinstance(v, str) else v)

    def update(self, change=None) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def widget(self):
        import ipywidgets as w

        self._shown = True
        self.update()
        controls = list(self.controls.values())
        return w.VBox([w.HBox(controls[: self.row_split]), w.HBox(controls[self.row_split :]), self.output])
