/* Chunk records of an HDF5 dataset in one call of H5Dchunk_iter, without a Python object per
 * chunk.
 *
 * The caller passes the address of H5Dchunk_iter taken from the libhdf5 instance h5py uses
 * (dataset ids belong to one library instance) and holds h5py's lock. The GIL stays held:
 * HDF5 is not thread-safe and every other HDF5 call in the process goes through that lock.
 *
 * No HDF5 headers are needed to build this: the few types are declared here as HDF5 >= 1.14
 * (and 2.0) defines them (H5Ipublic.h, H5public.h, H5Dpublic.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

typedef int64_t hid_t;
typedef unsigned long long hsize_t;
typedef uint64_t haddr_t;
typedef int herr_t;

#define H5P_DEFAULT ((hid_t)0)
#define HADDR_UNDEF (~(haddr_t)0)
#define H5S_MAX_RANK 32

typedef int (*chunk_iter_op_t)(const hsize_t *offset, unsigned filter_mask, haddr_t addr,
                               hsize_t size, void *op_data);
typedef herr_t (*chunk_iter_t)(hid_t dset_id, hid_t dxpl_id, chunk_iter_op_t op, void *op_data);

/* Rows of (offset[0..ndim), filter_mask, address, size) as int64, appended to one buffer. */
typedef struct {
    int64_t *data;
    size_t used;     /* int64 values written */
    size_t capacity; /* int64 values allocated */
    size_t width;    /* ndim + 3 */
    int ndim;
    int out_of_memory;
} records_t;

static int
grow(records_t *records)
{
    size_t capacity = records->capacity ? records->capacity * 2 : records->width * 4096;
    if (capacity < records->capacity || capacity > PY_SSIZE_T_MAX / sizeof(int64_t)) {
        return -1;
    }
    int64_t *data = PyMem_Realloc(records->data, capacity * sizeof(int64_t));
    if (data == NULL) {
        return -1;
    }
    records->data = data;
    records->capacity = capacity;
    return 0;
}

static int
on_chunk(const hsize_t *offset, unsigned filter_mask, haddr_t addr, hsize_t size, void *op_data)
{
    records_t *records = op_data;
    /* A chunk without an address holds no bytes: it reads as the fill value, like an
       unwritten chunk, so it gets no record (h5py reports it with offset None). */
    if (addr == HADDR_UNDEF) {
        return 0;
    }
    if (records->capacity - records->used < records->width && grow(records) < 0) {
        records->out_of_memory = 1;
        return -1; /* H5_ITER_ERROR: HDF5 stops and returns a negative value */
    }
    int64_t *row = records->data + records->used;
    for (int i = 0; i < records->ndim; i++) {
        row[i] = (int64_t)offset[i];
    }
    row[records->ndim] = (int64_t)filter_mask;
    row[records->ndim + 1] = (int64_t)addr;
    row[records->ndim + 2] = (int64_t)size;
    records->used += records->width;
    return 0;
}

PyDoc_STRVAR(chunk_records_doc,
"chunk_records(chunk_iter_address, dset_id, ndim) -> bytes\n\n"
"Every chunk of the dataset as ndim + 3 native int64 values: the chunk's first element\n"
"(elements), filter mask, file address and stored size (bytes), in HDF5's index order.\n"
"Chunks without an address are left out. Raises RuntimeError when H5Dchunk_iter fails.");

static PyObject *
chunk_records(PyObject *Py_UNUSED(module), PyObject *args)
{
    unsigned long long address;
    long long dset_id;
    int ndim;
    if (!PyArg_ParseTuple(args, "KLi:chunk_records", &address, &dset_id, &ndim)) {
        return NULL;
    }
    if (address == 0) {
        PyErr_SetString(PyExc_ValueError, "H5Dchunk_iter address is NULL");
        return NULL;
    }
    if (ndim < 1 || ndim > H5S_MAX_RANK) {
        PyErr_Format(PyExc_ValueError, "dataset rank %d outside 1..%d", ndim, H5S_MAX_RANK);
        return NULL;
    }
    chunk_iter_t iterate = (chunk_iter_t)(uintptr_t)address;
    records_t records = {NULL, 0, 0, (size_t)ndim + 3, ndim, 0};
    herr_t status = iterate((hid_t)dset_id, H5P_DEFAULT, on_chunk, &records);
    PyObject *result = NULL;
    if (records.out_of_memory) {
        PyErr_NoMemory();
    }
    else if (status < 0) {
        PyErr_Format(PyExc_RuntimeError, "H5Dchunk_iter failed on dataset id %lld", dset_id);
    }
    else {
        result = PyBytes_FromStringAndSize((const char *)records.data,
                                           (Py_ssize_t)(records.used * sizeof(int64_t)));
    }
    PyMem_Free(records.data);
    return result;
}

static PyMethodDef methods[] = {
    {"chunk_records", chunk_records, METH_VARARGS, chunk_records_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "refindex.scan.hdf5._chunk_iter",
    .m_doc = "Chunk records of an HDF5 dataset through H5Dchunk_iter with a C callback.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__chunk_iter(void)
{
    return PyModule_Create(&module);
}
