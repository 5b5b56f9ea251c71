"""fnn playground: watch a network learn in the browser (`python -m fnn.playground`).

A local web server (fnn.playground.server, the standard library's http.server) trains with fnn's
Trainer/TrainState core and pushes every unit's heatmap, the weights and the losses to the page
(fnn/playground/static/). Never imported by `import fnn`; this package imports nothing heavy, so
`python -m fnn.playground --help` is quick. The contract between server and page is API.md.
"""

__all__: list[str] = []  # the submodules: config, datasets, export, heatmaps, server, session
