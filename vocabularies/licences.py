"""The licences a territory may publish under: code → licence document, with what DCAT-AP and
CKAN say of each.

Codes are SPDX identifiers in lower case. The licence document IRIs are the EU licence authority
table's where it has the licence, else the licensor's own page (Licence Ouverte 2.0, which
data.gouv.fr links to). ``ckan_id`` is the id CKAN portals know the licence by (CKAN's core list
where it has it, data.gouv.fr's ``fr-lo`` for the Licence Ouverte).
"""

from __future__ import annotations

from dataclasses import dataclass

from .namespaces import ADMS_LICENCE_TYPE, EU_LICENCE


@dataclass(frozen=True)
class Licence:
    code: str
    iri: str
    title_en: str
    title_fr: str
    #: A page people read.
    url: str
    ckan_id: str
    #: The ADMS licence types it has (DCAT-AP recommends dct:type on a licence document).
    types: tuple[str, ...]
    #: Open Definition conformance, as CKAN reports it.
    od_conformance: str = "approved"


LICENCES: dict[str, Licence] = {
    lic.code: lic
    for lic in (
        Licence(
            "etalab-2.0",
            "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
            "Open Licence 2.0 (Etalab)",
            "Licence Ouverte 2.0 (Etalab)",
            "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
            "fr-lo",
            (ADMS_LICENCE_TYPE.Attribution,),
        ),
        Licence(
            "cc-by-4.0",
            EU_LICENCE.CC_BY_4_0,
            "Creative Commons Attribution 4.0",
            "Creative Commons Attribution 4.0",
            "https://creativecommons.org/licenses/by/4.0/",
            "cc-by",
            (ADMS_LICENCE_TYPE.Attribution,),
        ),
        Licence(
            "cc-by-sa-4.0",
            EU_LICENCE.CC_BYSA_4_0,
            "Creative Commons Attribution-ShareAlike 4.0",
            "Creative Commons Attribution - Partage dans les mêmes conditions 4.0",
            "https://creativecommons.org/licenses/by-sa/4.0/",
            "cc-by-sa",
            (ADMS_LICENCE_TYPE.Attribution, ADMS_LICENCE_TYPE["ViralEffect-ShareAlike"]),
        ),
        Licence(
            "odbl-1.0",
            EU_LICENCE.ODC_BL,
            "Open Data Commons Open Database License 1.0",
            "Open Data Commons Open Database License 1.0",
            "https://opendatacommons.org/licenses/odbl/1-0/",
            "odc-odbl",
            (ADMS_LICENCE_TYPE.Attribution, ADMS_LICENCE_TYPE["ViralEffect-ShareAlike"]),
        ),
        Licence(
            "cc0-1.0",
            EU_LICENCE.CC0,
            "Creative Commons CC0 1.0 (public domain dedication)",
            "Creative Commons CC0 1.0 (dédicace au domaine public)",
            "https://creativecommons.org/publicdomain/zero/1.0/",
            "cc-zero",
            (ADMS_LICENCE_TYPE.PublicDomain,),
        ),
    )
}
#: What a territory publishes under unless its record says otherwise.
DEFAULT_LICENCE = "etalab-2.0"
