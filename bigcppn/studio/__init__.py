"""``bigcppn explore``: a local web page to find a picture (seed grid, live controls, endless zoom) and send
it to print or to a pyramid. :mod:`.app` is the server, :mod:`.views` what it renders for the page,
:mod:`.jobs` and :mod:`.products` the jobs, :mod:`.page` the page, :mod:`.run` how it starts and stops."""
