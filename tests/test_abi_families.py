"""Family grouping on small inputs written like the real headers (xen.h, domctl.h, grant_table.h)."""

from __future__ import annotations

from pathlib import Path

from xenpatch.abi.families import common_prefix, group_families, is_bound, is_mask
from xenpatch.abi.model import Enumerator, Family, Macro, TypeInfo


def macros(header: str, text: str) -> list[Macro]:
    """``NAME value expr`` per line; the line number in the header is the line in TEXT."""
    out = []
    for n, line in enumerate(text.strip("\n").splitlines(), 1):
        if line.strip():
            name, value, expr = line.split(None, 2)
            out.append(Macro(name, None if value == "-" else int(value, 0), expr, header, n))
    return out


SIF = """
SIF_PRIVILEGED 1 (1<<0)
SIF_INITDOMAIN 2 (1<<1)
SIF_MULTIBOOT_MOD 4 (1<<2)
SIF_MOD_START_PFN 8 (1<<3)
SIF_VIRT_P2M_4TOOLS 16 (1<<4)

SIF_PM_MASK 0xff00 (0xFF<<8)
"""

CDF = """
_XEN_DOMCTL_CDF_hvm 0 0
XEN_DOMCTL_CDF_hvm 1 (1U<<_XEN_DOMCTL_CDF_hvm)
_XEN_DOMCTL_CDF_hap 1 1
XEN_DOMCTL_CDF_hap 2 (1U<<_XEN_DOMCTL_CDF_hap)
XEN_DOMCTL_CDF_vpmu 128 (1U << 7)

XEN_DOMCTL_CDF_MAX 128 XEN_DOMCTL_CDF_vpmu
_XEN_DOMCTL_IOMMU_no_sharept 0 0
XEN_DOMCTL_IOMMU_no_sharept 1 (1U << _XEN_DOMCTL_IOMMU_no_sharept)
XEN_DOMCTL_IOMMU_MAX 1 XEN_DOMCTL_IOMMU_no_sharept
"""

GTF = """
GTF_invalid 0 (0U<<0)
GTF_permit_access 1 (1U<<0)
GTF_accept_transfer 2 (2U<<0)
GTF_transitive 3 (3U<<0)
GTF_type_mask 3 (3U<<0)
_GTF_readonly 2 (2)
GTF_readonly 4 (1U<<_GTF_readonly)
"""


def test_flag_family_with_reserved_mask() -> None:
    fams = {f.prefix: f for f in group_families(macros("xen.h", SIF), [])}
    assert fams == {"SIF_": Family("SIF_", "bits", ("SIF_PRIVILEGED", "SIF_INITDOMAIN",
                                                     "SIF_MULTIBOOT_MOD", "SIF_MOD_START_PFN",
                                                     "SIF_VIRT_P2M_4TOOLS"),
                                   used_mask=31, reserved_mask=0xFF00, masks=("SIF_PM_MASK",))}


def test_bit_number_idiom_and_markers() -> None:
    fams = {f.prefix: f for f in group_families(macros("domctl.h", CDF), [])}
    cdf = fams["XEN_DOMCTL_CDF_"]
    assert cdf.kind == "bits" and cdf.used_mask == 131 and cdf.markers == ("XEN_DOMCTL_CDF_MAX",)
    assert cdf.members == ("XEN_DOMCTL_CDF_hvm", "XEN_DOMCTL_CDF_hap", "XEN_DOMCTL_CDF_vpmu")
    # one flag and its marker: not a family (a family has two members or more)
    assert "XEN_DOMCTL_IOMMU_" not in fams


def test_field_mask_is_not_reserved() -> None:
    (gtf,) = group_families(macros("grant_table.h", GTF), [])
    assert gtf.kind == "bits" and gtf.masks == ("GTF_type_mask",) and gtf.reserved_mask == 0
    assert "_GTF_readonly" not in gtf.members


def test_values_family_and_too_specific_first_pair() -> None:
    text = """
XENFEAT_writable_page_tables 0 0
XENFEAT_writable_descriptor_tables 1 1
XENFEAT_auto_translated_physmap 2 2
XENFEAT_supervisor_mode_kernel 3 3
XENFEAT_NR_SUBMAPS 1 1
"""
    (fam,) = group_families(macros("features.h", text), [])
    assert fam.prefix == "XENFEAT_" and fam.kind == "values" and len(fam.members) == 4


def test_runs_split_sub_namespaces_and_skip_lone_names() -> None:
    text = """
XEN_DOMCTL_INTERFACE_VERSION 0x15 0x00000015
XEN_DOMCTL_SHADOW_OP_OFF 0 0
XEN_DOMCTL_SHADOW_OP_ENABLE 32 32
XEN_DOMCTL_SHADOW_OP_CLEAN 11 11
XEN_DOMCTL_SHADOW_ENABLE_REFCOUNT 2 (1 << 1)
XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY 4 (1 << 2)
"""
    fams = {f.prefix: f.kind for f in group_families(macros("domctl.h", text), [])}
    assert fams == {"XEN_DOMCTL_SHADOW_OP_": "values", "XEN_DOMCTL_SHADOW_ENABLE_": "bits"}


def test_same_prefix_twice_gets_a_located_key() -> None:
    found = macros("a.h", "FOO_A 1 1\nFOO_B 2 2\n") + macros("b.h", "FOO_C 1 1\nFOO_D 2 2\n")
    assert [f.prefix for f in group_families(found, [])] == ["FOO_", "FOO_@b.h:1"]


def test_enumerations_form_value_families() -> None:
    enum = TypeInfo("enum xenmem_access_t", "enum", 4, 4, "memory.h", 400, enumerators=(
        Enumerator("XENMEM_access_n", 0), Enumerator("XENMEM_access_r", 1),
        Enumerator("XENMEM_access_w", 2), Enumerator("XENMEM_access_rw", 3)))
    (fam,) = group_families([], [enum])
    assert fam.prefix == "XENMEM_access_" and fam.kind == "values" and len(fam.members) == 4


def test_name_rules() -> None:
    assert common_prefix("SIF_PRIVILEGED", "SIF_INITDOMAIN") == "SIF_"
    assert common_prefix("__HYPERVISOR_mmu_update", "__HYPERVISOR_set_gdt") == "__HYPERVISOR_"
    assert common_prefix("XEN_A", "XEN_B") == ""  # Xen's own namespace is no family
    assert is_mask("GTF_type_mask") and is_mask("XEN_DOMINF_shutdownmask")
    assert not is_mask("XEN_DOMCTL_VMSI_X86_UNMASKED")
    assert is_bound("XEN_DOMCTL_PFINFO_LTAB_SHIFT", "XEN_DOMCTL_PFINFO_")
    assert is_bound("DOMID_FIRST_RESERVED", "DOMID_") and not is_bound("SIF_MOD_START_PFN", "SIF_")


def test_real_families_of_xen_417(xen_tree: Path) -> None:
    """Through the real pipeline: the families the issue names exist, with the right shape."""
    from xenpatch.abi import api, sources

    model = api.dump(sources.from_tree(xen_tree), ("x86_64",))
    fams = model.arch_map["x86_64"].family_map
    assert fams["SIF_"].kind == "bits" and fams["SIF_"].reserved_mask == 0xFF00
    assert fams["SIF_"].used_mask == 0x1F
    assert fams["XEN_DOMCTL_CDF_"].markers == ("XEN_DOMCTL_CDF_MAX",)
    assert fams["XEN_DOMCTL_CDF_"].used_mask == 0xFF
    assert fams["GTF_"].masks == ("GTF_type_mask",) and fams["GTF_"].reserved_mask == 0
    for prefix in ("XENFEAT_", "__HYPERVISOR_", "XEN_DOMCTL_", "HVM_PARAM_"):
        assert fams[prefix].kind == "values", prefix
    assert "XEN_DOMCTL_createdomain" in fams["XEN_DOMCTL_"].members
    assert "XEN_DOMCTL_vmtrace_enable" not in fams["XEN_DOMCTL_"].members
    assert len(fams["__HYPERVISOR_"].members) >= 40
