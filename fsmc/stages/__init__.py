"""Pipeline stages: one module per stage, each with a pure ``run(params, workspace)``.

The same ``run`` is wrapped by a Prefect task (``tasks/``) and called by its DVC
stage (``python -m fsmc.stages NAME``), so there is one implementation.
"""

from fsmc.stages import compress, curate_ood, evaluate, record_inputs, recover, sample_few_shot, teacher, validate

STAGES = {
    "record_inputs": record_inputs.run,
    "sample_few_shot": sample_few_shot.run,
    "curate_ood": curate_ood.run,
    "validate": validate.run,
    "teacher": teacher.run,
    "compress": compress.run,
    "recover": recover.run,
    "evaluate": evaluate.run,
}

# The order a run goes through its stages after ``record_inputs`` (the teacher comes before OOD
# curation: the optional near-ID filter asks it). Every one of these goes through the stage cache.
CACHED_PIPELINE = ("sample_few_shot", "teacher", "curate_ood", "validate", "compress", "recover", "evaluate")
