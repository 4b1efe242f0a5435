# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""memvit.data.cvat: "CVAT for video 1.1" XML as CVAT's published format describes it. Files written here by
hand in that format read as they say (a track's box on every frame, keyframes-only tracks interpolated,
``outside`` ends a track's visibility); what the writer writes reads back the same; every malformed input
names its file and line."""

from __future__ import annotations

import os
import random
import re

import pytest

from memvit.cli import UserError
from memvit.data import cvat

# A task export laid out as CVAT writes it (the format document's interpolation example: a person label with a
# checkbox and a select, a track with keyframes only, a gap after outside="1").
TASK = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>7</id>
      <name>my video</name>
      <size>100</size>
      <mode>interpolation</mode>
      <overlap>5</overlap>
      <bugtracker></bugtracker>
      <created>2024-01-01 10:00:00.000000+00:00</created>
      <updated>2024-01-01 11:00:00.000000+00:00</updated>
      <subset>default</subset>
      <start_frame>0</start_frame>
      <stop_frame>99</stop_frame>
      <frame_filter></frame_filter>
      <segments>
        <segment><id>9</id><start>0</start><stop>99</stop><url>http://localhost:8080/api/jobs/9</url></segment>
      </segments>
      <owner><username>admin</username><email></email></owner>
      <assignee></assignee>
      <labels>
        <label>
          <name>person</name>
          <color>#ff0000</color>
          <type>any</type>
          <attributes>
            <attribute>
              <name>talk</name>
              <mutable>True</mutable>
              <input_type>checkbox</input_type>
              <default_value>false</default_value>
              <values>false</values>
            </attribute>
            <attribute>
              <name>pose</name>
              <mutable>True</mutable>
              <input_type>select</input_type>
              <default_value>stand</default_value>
              <values>stand
walk
sit</values>
            </attribute>
          </attributes>
        </label>
        <label><name>car</name><color>#00ff00</color><type>any</type><attributes></attributes></label>
      </labels>
      <original_size>
        <width>640</width>
        <height>480</height>
      </original_size>
      <source>my video.mp4</source>
    </task>
    <dumped>2024-01-01 12:00:00.000000+00:00</dumped>
  </meta>
  <track id="0" label="person" source="manual">
    <box frame="10" keyframe="1" outside="0" xtl="100.00" ytl="50.00" xbr="200.00" ybr="300.00" z_order="0">
      <attribute name="talk">true</attribute>
      <attribute name="pose">walk</attribute>
    </box>
    <box frame="20" keyframe="1" outside="0" occluded="1" xtl="120.00" ytl="60.00" xbr="240.00" ybr="320.00">
      <attribute name="talk">false</attribute>
    </box>
    <box frame="30" keyframe="1" outside="1" xtl="120.00" ytl="60.00" xbr="240.00" ybr="320.00" z_order="0">
    </box>
    <box frame="50" keyframe="1" outside="0" occluded="0" xtl="10.00" ytl="20.00" xbr="30.00" ybr="40.00" z_order="0">
    </box>
  </track>
  <track id="1" label="car" source="auto" group_id="4">
    <polygon frame="0" keyframe="1" outside="0" occluded="0" points="1.0,2.0;3.0,4.0;5.0,1.0" z_order="0">
    </polygon>
    <box frame="3" keyframe="1" outside="0" xtl="0.00" ytl="0.00" xbr="5.00" ybr="5.00" rotation="90.00">
    </box>
  </track>
</annotations>
"""


def test_a_task_export_reads_as_the_format_says(tmp_path):
    path = tmp_path / "annotations.xml"
    path.write_text(TASK)
    ann = cvat.read_video_annotations(path)
    assert (ann.source, ann.width, ann.height, ann.size, ann.start_frame, ann.stop_frame, ann.kind) == (
        "my video.mp4", 640, 480, 100, 0, 99, "task")
    person = ann.label("person")
    assert [(a.name, a.input_type, a.default, a.values) for a in person.attributes] == [
        ("talk", "checkbox", "false", ("false",)), ("pose", "select", "stand", ("stand", "walk", "sit"))]
    track, car = ann.tracks
    assert (car.label, car.group, car.source, len(car.boxes), ann.skipped_shapes) == ("car", 4, "auto", 1, 1)
    assert car.boxes[0].extent() == pytest.approx((0, 0, 5, 5))  # a square turned by 90 degrees
    assert track.box_at(9) is None  # before the first box
    first = track.box_at(10)
    assert (first.xtl, first.ybr, dict(first.attributes)) == (100, 300, {"talk": "true", "pose": "walk"})
    middle = track.box_at(15)  # halfway between two keyframes: CVAT's linear interpolation, the first's attributes
    assert (middle.xtl, middle.ytl, middle.xbr, middle.ybr) == pytest.approx((110, 55, 220, 310))
    assert dict(middle.attributes) == {"talk": "true", "pose": "walk"}
    second = track.box_at(20)
    assert dict(second.attributes) == {"talk": "false", "pose": "walk"}  # "pose" carried over from frame 10
    assert second.occluded and not second.outside
    assert track.box_at(29) is not None and track.box_at(30) is None and track.box_at(49) is None  # outside: gone
    last = track.box_at(50)
    assert dict(last.attributes) == {"talk": "false", "pose": "walk"}
    assert track.box_at(99, last_frame=99).xtl == 10  # the last box holds to the end of the task ...
    assert track.box_at(100, last_frame=99) is None  # ... and no further


def _random_annotations(rng: random.Random) -> cvat.VideoAnnotations:
    names = ["walk", 'talk to "you"', "carry/hold (an object)", "x<&>y"]
    labels = (cvat.checkbox_label("person", names),
              cvat.Label("actor", (cvat.AttributeSpec("pose", "select", "stand", ("stand", "sit"), True),
                                   cvat.AttributeSpec("note", "text", "", (), False))),
              cvat.Label("exclude"))
    tracks = []
    for track_id in rng.sample(range(1000), 5):
        label = rng.choice(labels)
        frames = sorted(rng.sample(range(300), rng.randint(1, 12)))
        boxes = []
        for frame in frames:
            x, y = rng.uniform(0, 500), rng.uniform(0, 300)
            attributes = tuple((a.name, rng.choice(a.values or ("some text",)) if a.input_type != "checkbox"
                                else rng.choice(("true", "false"))) for a in label.attributes)
            boxes.append(cvat.Box(frame, round(x, 2), round(y, 2), round(x + rng.uniform(1, 100), 2),
                                  round(y + rng.uniform(1, 100), 2), outside=rng.random() < 0.2,
                                  occluded=rng.random() < 0.3, keyframe=rng.random() < 0.5,
                                  rotation=rng.choice((0.0, 12.5)), attributes=attributes))
        tracks.append(cvat.Track(track_id, label.name, tuple(boxes), group=rng.choice((0, 0, 3)),
                                 source=rng.choice(("manual", "auto"))))
    return cvat.VideoAnnotations(labels=labels, tracks=tuple(tracks), source="clip 1.mkv", width=640, height=360,
                                 size=300, stop_frame=299, name="a task & more")


def test_what_the_writer_writes_reads_back_the_same(tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"seed {seed}")
    rng = random.Random(seed)
    for k in range(3):
        ann = _random_annotations(rng)
        path = tmp_path / f"a{k}.xml"
        cvat.write_video_annotations(path, ann)
        assert cvat.read_video_annotations(path) == ann


def test_a_job_export_reads_without_a_source(tmp_path):
    job = TASK.replace("<task>", "<job>").replace("</task>", "</job>").replace("      <source>my video.mp4</source>\n",
                                                                               "")
    job = job.replace("<start_frame>0</start_frame>", "<start_frame>20</start_frame>")
    path = tmp_path / "job.xml"
    path.write_text(job)
    ann = cvat.read_video_annotations(path)
    assert (ann.kind, ann.source, ann.start_frame, ann.last_frame) == ("job", None, 20, 99)


BAD = [
    ("<annotations><version>1.1</version><meta><task>", 1, "not well-formed XML"),
    ("<?xml version='1.0'?>\n<root/>", 2, "not <annotations>"),
    (TASK.replace("  <version>1.1</version>\n", ""), 1, "no <version>"),
    (TASK.replace("<version>1.1</version>", "<version>1.0</version>"), 3, "reads CVAT XML 1.1"),
    (TASK.replace('xtl="120.00" ytl="60.00" xbr="240.00" ybr="320.00">\n      <attribute',
                  'ytl="60.00" xbr="240.00" ybr="320.00">\n      <attribute'), 62, "has no xtl"),
    (TASK.replace('frame="20"', 'frame="2O"'), 62, "is not an integer"),
    (TASK.replace('frame="30"', 'frame="20"'), 65, "frame 20 has two boxes (first at line 62)"),
    (TASK.replace('outside="1"', 'outside="yes"'), 65, "expected 0 or 1"),
    (TASK.replace('label="car"', 'label="bus"'), 70, "'bus', which <labels> does not declare"),
    (TASK.replace('<track id="1"', '<track id="0"'), 70, "track id 0 is used twice (first at line 57)"),
    (TASK.replace('<track id="1" label="car"', '<track id="1" label="car" task_id="3"'), 70, "a project export"),
    (TASK.replace('  <track id="1"', '  <image id="0" name="a.jpg"></image>\n  <track id="1"'), 70,
     "'CVAT for images' export"),
    (TASK.replace("<input_type>select</input_type>", "<input_type>slider</input_type>"), 39, "unknown <input_type>"),
    (TASK.replace("<frame_filter></frame_filter>", "<frame_filter>every 5</frame_filter>"), 17, "'step=N'"),
    (TASK.replace("<labels>", "<nolabels>").replace("</labels>", "</nolabels>"), 5, "has no <labels>"),
]


@pytest.mark.parametrize("text, line, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_names_the_file_and_the_line(tmp_path, text, line, message):
    path = tmp_path / "broken annotations.xml"
    path.write_text(text)
    with pytest.raises(cvat.CvatFormatError) as error:
        cvat.read_video_annotations(path)
    assert isinstance(error.value, UserError)
    assert str(error.value).startswith(f"{path}:{line}: ") and message in str(error.value), str(error.value)


def test_the_zip_cvat_downloads_reads_like_its_annotations_xml(tmp_path):
    import zipfile

    (tmp_path / "annotations.xml").write_text(TASK)
    with zipfile.ZipFile(tmp_path / "task_7-cvat for video 1.1.zip", "w") as archive:
        archive.writestr("images/frame_000000.PNG", b"not read")
        archive.writestr("annotations.xml", TASK)
    assert (cvat.read_video_annotations(tmp_path / "task_7-cvat for video 1.1.zip")
            == cvat.read_video_annotations(tmp_path / "annotations.xml"))
    with zipfile.ZipFile(tmp_path / "broken.zip", "w") as archive:
        archive.writestr("annotations.xml", TASK.replace('frame="20"', 'frame="x"'))
    with pytest.raises(cvat.CvatFormatError, match="^" + re.escape(f"{tmp_path}/broken.zip:annotations.xml:62: ")):
        cvat.read_video_annotations(tmp_path / "broken.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("instances_default.json", "{}")
    with pytest.raises(cvat.CvatFormatError, match="a ZIP without annotations.xml"):
        cvat.read_video_annotations(tmp_path / "other.zip")
