"""The XMP packet every exported PNG and WebP carries: the marks other software reads.

IPTC's Digital Source Type (Iptc4xmpExt:DigitalSourceType, a NewsCodes URI) says how the image was
made: trainedAlgorithmicMedia for an image a model made from prompts, compositeWithTrainedAlgorithmic-
Media for an image the user brought that a model edited. IPTC Photo Metadata 2025.1's AI System
Used / AI System Version Used name the model; the description says the mark in words (synthetic,
or edited), and that the source's pixels may show identifying text when it was accepted with
burned-in annotation (data/burned_in.py). No prompt goes here: the prompts stay in MedEdit's own
provenance record (PNG tEXt), which a reader must look for on purpose.
"""

from xml.sax.saxutils import escape, quoteattr

from pipelines.core.limits import SOFTWARE
from pipelines.export.provenance import burned_in, mark_of

PNG_KEY = "XML:com.adobe.xmp"  # the iTXt keyword XMP readers look for in a PNG
IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
BURNED_IN_WORDS = "burned-in annotation: the source's pixels may show identifying text, and so may this image"

PACKET = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="{iptc}"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    Iptc4xmpExt:DigitalSourceType={source}
    Iptc4xmpExt:AISystemUsed={system}
    Iptc4xmpExt:AISystemVersionUsed={version}
    xmp:CreatorTool={tool}>
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">{description}</rdf:li>
    </rdf:Alt>
   </dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""


def xmp_packet(record: dict) -> str:
    """The XMP packet (UTF-8 text) for a provenance record (provenance.provenance_record)."""
    model = record.get("model_id") or SOFTWARE
    return PACKET.format(iptc=IPTC_EXT, source=quoteattr(record["digital_source_type"]),
                         system=quoteattr(f"{SOFTWARE} ({model})"),
                         version=quoteattr(str(record.get("model_revision") or "")),
                         tool=quoteattr(SOFTWARE), description=escape(description(record)))


def description(record: dict) -> str:
    text = f"{SOFTWARE}: {mark_of(record)}"
    return text + ("; " + BURNED_IN_WORDS if burned_in(record) else "")

