"""The logic of each DVC stage, one module per stage, each with ``run(params, ...)``: the stage scripts in
``stages/`` only parse their arguments and call it. Modules are imported one by one (this file imports
nothing), so a stage depends only on the code it runs."""
