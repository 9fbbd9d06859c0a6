#ifndef __XEN_PUBLIC_XEN_H__
#define __XEN_PUBLIC_XEN_H__
/* a comment may say café: cpp drops it */
#define XEN_LATIN1 "café"
#endif
