"""Pipeline docs generated from the code: ``edp docs build`` writes ``docs/pipelines/``.

* :mod:`edp_tools.docs.pipelines` - the pipelines as data (one entry per page);
* :mod:`edp_tools.docs.code` - docstrings, settings read, metrics and errors, by ``ast``;
* :mod:`edp_tools.docs.infra` - trigger, schedule, retries and alerts from Terraform/workflows;
* :mod:`edp_tools.docs.sections`, :mod:`edp_tools.docs.pages` - the Markdown;
* :mod:`edp_tools.docs.build` - write the pages, or list how committed pages drifted.
"""
