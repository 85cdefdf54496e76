"""Promote: copy objects of an analysis into editable annotations.

The analysis output stays as it was (read-only); each chosen object's outline, traced
from the labels the job stored, becomes a new polygon annotation of the image, with
measurements computed like any annotation's and the analysis it came from recorded
(``analysis_id``; ``properties.object_id`` is the object's label)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pixelmill.errors import InvalidParameter, missing_ids

if TYPE_CHECKING:
    from pixelmill.backends.metadata.analyses import AnalysisRecord
    from pixelmill.backends.metadata.annotations import AnnotationRepository
    from pixelmill.backends.metadata.events import Actor
    from pixelmill.services.workspace.analyses import Analyses
    from pixelmill.services.workspace.annotations import Place

#: the most objects one promote copies
MAX_PROMOTE = 20_000


def promote(
    analyses: Analyses,
    annotations: AnnotationRepository,
    actor: Actor,
    record: AnalysisRecord,
    place: Place,
    object_ids: list[int] | None,
) -> list[str]:
    """The ids of the new annotations, one per object (``None``: every object)."""
    from pixelmill.imaging.analysis.contours import label_polygons
    from pixelmill.imaging.analysis.export import labels_from_tiff
    from pixelmill.imaging.annotations import Limits, parse_feature

    labels = labels_from_tiff(analyses.artifact(record, place.image_id, "labels").body)
    outlines = label_polygons(labels, object_ids)
    region = record.summary.get("region") or {}
    dx, dy = region.get("left", 0), region.get("top", 0)
    if dx or dy:  # the labels cover a region of the image: back into the image's pixels
        outlines = {k: [[x + dx, y + dy] for x, y in ring] for k, ring in outlines.items()}
    if object_ids is not None:
        missing = sorted(set(object_ids) - set(outlines))
        if missing:
            raise missing_ids(
                "object(s) are not in this analysis's result", missing, field="object_ids"
            )
    if len(outlines) > MAX_PROMOTE:
        raise InvalidParameter(
            f"{len(outlines)} objects; promote at most {MAX_PROMOTE} at once (name object_ids)"
        )
    limits = Limits(image_size=(place.width, place.height))
    features = [
        parse_feature(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "objectType": "annotation",
                    "name": f"{record.target} #{label}",
                    "object_id": label,
                },
            },
            limits,
            index=n,
        )
        for n, (label, ring) in enumerate(sorted(outlines.items()))
    ]
    if not features:
        return []
    return annotations.create_many(
        actor,
        record.study_id,
        place.image_id,
        features,
        pixel_size_um=place.pixel_size_um,
        # an editable copy ("analysis" marks read-only model output)
        source="import",
        analysis_id=record.id,
    )
